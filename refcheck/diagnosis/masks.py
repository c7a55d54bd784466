"""dropout and embedding mistakes.

- dropout: kept values scaled by p, 1/p or not at all instead of 1/(1 - p) (inverted dropout),
  no scaling in the backward, or the mask read the wrong way round (1 = drop);
- embedding: the weight gradient assigned (``grad[indices] = dout``: a row looked up k times keeps
  one contribution) instead of accumulated (``np.add.at``), or the padding_idx row's gradient not
  zeroed.
"""
from __future__ import annotations

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic

__all__ = ["DROPOUT_CHECKS", "EMBEDDING_CHECKS"]


def dropout_scaling(context: Context, tensor: str) -> str | None:
    p = float(context.hparams["p"])
    if not context.hparams["training"] or p in (0.0, 1.0):
        return None
    keep = np.asarray(context.tensors["mask"], dtype=np.float64)
    base = context.wide("input") if tensor == "output" else context.wide("dout")
    where = "" if tensor == "output" else " in the backward"
    factors = [(p, f"kept values scaled by p{where}: inverted dropout multiplies them by 1 / (1 - p)"),
               (1.0 / p, (f"kept values divided by p{where}: p is the drop probability; divide by the keep "
                         "probability 1 - p")),
               (1.0 - p, f"kept values multiplied by 1 - p{where}: inverted dropout divides by 1 - p"),
               (1.0, "no scaling in the backward: grad_input = dout * mask / (1 - p), as in the forward"
                if tensor == "grad_input" else "mask applied without scaling: inverted dropout scales the kept "
                                               "values by 1 / (1 - p) in training")]
    for factor, message in factors:
        if context.explains(tensor, base * keep * factor):
            return message
    if context.explains(tensor, base * (1.0 - keep) / (1.0 - p)):
        return "mask read the wrong way round: a mask entry of 1 keeps the element, 0 drops it"
    return None


def embedding_assigned(context: Context, tensor: str) -> str | None:
    indices = np.asarray(context.tensors["input"]).reshape(-1)
    weight = context.tensors["weight"]
    dout = context.wide("dout").reshape(-1, weight.shape[1])
    padding_idx = context.hparams["padding_idx"]
    pad_row = None if padding_idx is None else padding_idx % weight.shape[0]
    assigned = np.zeros(weight.shape)
    assigned[indices] = dout  # numpy keeps one of the repeated rows' values
    if pad_row is not None:
        assigned[pad_row] = 0.0
    if context.explains(tensor, assigned):
        return ("weight gradient assigned instead of accumulated: grad_weight[indices] = dout keeps one "
                "contribution of a row looked up several times; accumulate with np.add.at(grad_weight, indices, dout)")
    if pad_row is not None:
        accumulated = np.zeros(weight.shape)
        np.add.at(accumulated, indices, dout)
        if context.explains(tensor, accumulated):
            return f"padding_idx row not zeroed: the gradient of row {pad_row} (padding_idx) must be 0"
    return None


DROPOUT_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_input"), float32_arithmetic),
    (("output", "grad_input"), dropout_scaling),
]
EMBEDDING_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_weight"), float32_arithmetic),
    (("grad_weight",), embedding_assigned),
]
