"""Embedding lookup in numpy, forward and backward (``torch.nn.functional.embedding``).

``out[..., :] = weight[indices[...], :]``; the gradient of ``weight`` sums the upstream rows
of every position that looked a row up, so a row used k times collects k contributions::

    grad_weight[r] = sum of dout[position] over positions with indices[position] == r

and the ``padding_idx`` row gets a zero gradient (its forward value is still looked up, as in
torch's functional form; only ``nn.Embedding`` initialises that row to zero). The indices are
not differentiable. Unlike numpy indexing, a negative or too large index is an error, as in
torch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["embedding_backward", "embedding_forward"]


def _padding_row(padding_idx: int | None, num_embeddings: int) -> int | None:
    """``padding_idx`` as a row number in ``[0, num_embeddings)``, or None."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(
            f"embedding: padding_idx must be within num_embeddings ({num_embeddings}), got "
            f"{padding_idx}"
        )
    return padding_idx % num_embeddings  # torch counts a negative padding_idx from the end


def embedding_forward(
    indices: np.ndarray, weight: np.ndarray, *, padding_idx: int | None
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Look up rows of ``weight``.

    Parameters
    ----------
    indices : ndarray of any shape, integer
        Row numbers in ``[0, num_embeddings)``. Not differentiated.
    weight : ndarray of shape (num_embeddings, embedding_dim)
    padding_idx : int or None
        A row in ``[-num_embeddings, num_embeddings)`` (negative counts from the end) whose
        gradient is always zero; None (torch's default) for none.

    Returns
    -------
    out : ndarray of shape ``indices.shape + (embedding_dim,)``, dtype of ``weight``
    cache : tuple

    Raises
    ------
    TypeError
        For non-integer indices.
    IndexError
        For an index outside ``[0, num_embeddings)`` (torch: "index out of range in self").
    ValueError
        For a ``padding_idx`` out of range or a weight that is not 2-D.
    """
    indices = np.asarray(indices)
    weight = np.asarray(weight)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"embedding: indices must be integers, got {indices.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be (num_embeddings, dim), got {weight.shape}")
    num_embeddings = weight.shape[0]
    padding_row = _padding_row(padding_idx, num_embeddings)
    outside = (indices < 0) | (indices >= num_embeddings)
    if np.any(outside):
        raise IndexError(
            f"embedding: index {indices[outside].flat[0]} out of range for {num_embeddings} rows"
        )
    out = weight[indices]  # advanced indexing copies
    return out, (indices, weight.shape, weight.dtype, padding_row)


def embedding_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`embedding_forward` with respect to ``weight``.

    Parameters
    ----------
    dout : ndarray of shape ``indices.shape + (embedding_dim,)``

    Returns
    -------
    (grad_weight,) : tuple of one ndarray of shape (num_embeddings, embedding_dim)
        Upstream rows summed per looked-up row (``np.add.at`` accumulates repeated indices,
        where ``grad[indices] += dout`` would keep only one of them); zero for rows never
        looked up and for ``padding_idx``.
    """
    indices, weight_shape, dtype, padding_row = cache
    dout = np.asarray(dout, dtype=dtype)
    grad_weight = np.zeros(weight_shape, dtype=dtype)
    np.add.at(grad_weight, indices.reshape(-1), dout.reshape(-1, weight_shape[1]))
    if padding_row is not None:
        grad_weight[padding_row] = 0
    return (grad_weight,)
