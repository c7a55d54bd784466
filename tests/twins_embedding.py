"""Loop twin of the embedding layer: one row copied, and one row added, per index."""
from __future__ import annotations

import numpy as np

__all__ = ["embedding_loops"]


def embedding_loops(indices, weight, dout, *, padding_idx):
    """(out, (grad_weight,)), element by element; nothing here reuses refcheck.layers."""
    rows, dim = weight.shape
    padding_row = None if padding_idx is None else padding_idx % rows
    out = np.zeros((*indices.shape, dim), dtype=weight.dtype)
    grad_weight = np.zeros((rows, dim), dtype=weight.dtype)
    for position in np.ndindex(*indices.shape):
        row = int(indices[position])
        for k in range(dim):
            out[(*position, k)] = weight[row, k]
            if row != padding_row:
                grad_weight[row, k] += dout[(*position, k)]
    return out, (grad_weight,)
