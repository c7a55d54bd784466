"""Weight and bias gradients assigned where they should be accumulated (shared by conv2d and linear).

A backward that loops over samples (and, for conv2d, over output positions) and writes
``dw = ...`` or ``db[f] = ...`` where ``+=`` belongs keeps only the last iteration's term: the
gradient of the upstream gradient with every entry zeroed but the last sample's (or the last
sample's last position's). torch's gradient for that masked upstream gradient is the candidate.
"""
from __future__ import annotations

import numpy as np

from .context import Context

__all__ = ["assigned_not_accumulated"]


def _last_terms(context: Context) -> list[tuple[str, np.ndarray]]:
    """Masked upstream gradients, each with what it keeps; dout is (N, F, OH, OW) for conv2d and
    (N, ..., out_features) for linear (its leading axes read as rows of samples)."""
    dout = context.wide("dout")
    masks = []
    if dout.ndim >= 2 and dout.shape[0] > 1:
        rows = dout.reshape(-1, dout.shape[-1]) if context.layer != "conv2d" else dout
        last_sample = np.zeros_like(rows)
        last_sample[-1] = rows[-1]
        masks.append(("the last sample's term", last_sample.reshape(dout.shape)))
    if context.layer == "conv2d" and dout.shape[2] * dout.shape[3] > 1:
        last_position = np.zeros_like(dout)
        last_position[-1, :, -1, -1] = dout[-1, :, -1, -1]
        masks.append(("the term of the last sample at the last output position", last_position))
    return masks


def assigned_not_accumulated(context: Context, tensor: str) -> str | None:
    """grad_weight or grad_bias equal to the last loop iteration's term alone."""
    if tensor not in ("grad_weight", "grad_bias"):
        return None
    for what, masked in _last_terms(context):
        candidate = context.torch(f"last_term {what}", dout=masked).get(tensor)
        if context.explains(tensor, candidate):
            return (f"{tensor} assigned, not accumulated: it holds only {what} (a loop writes '=' where '+=' "
                    f"belongs); torch sums the terms of every sample{' and position' if 'position' in what else ''}")
    return None
