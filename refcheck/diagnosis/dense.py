"""linear mistakes: the weight or its gradient in (in_features, out_features) layout, and
bias/weight gradients not summed over the batch."""
from __future__ import annotations

import numpy as np

from .accumulated import assigned_not_accumulated
from .context import Check, Context
from .generic import averaged_over_batch, bias_not_summed, float32_arithmetic

__all__ = ["LINEAR_CHECKS"]

WEIGHT_TRANSPOSED = ("weight layout transposed: torch's linear weight is (out_features, in_features); "
                     "compute x @ weight.T (and grad_input = dout @ weight)")


def weight_transposed(context: Context, tensor: str) -> str | None:
    """The weight read as (in, out), or its gradient returned as (in, out)."""
    if tensor == "grad_weight":
        result = context.result(tensor)
        transposed = context.reference(tensor).T
        if result is not None and result.shape == transposed.shape and context.explains(tensor, transposed):
            if "weight (in, out)" in context.run.origin:  # the user's weight is (in, out): say it in those terms
                return ("weight gradient transposed: return it as (in_features, out_features) like your weight, "
                        "i.e. x.T @ dout, not dout.T @ x")
            return ("weight gradient transposed: return grad_weight as (out_features, in_features) like the weight, "
                    "i.e. dout.T @ x, not x.T @ dout")
        return None
    weight = context.wide("weight")
    if weight.shape[0] != weight.shape[1]:
        return None  # x @ weight would not even run
    candidate = context.torch("weight_in_out", tensors={"weight": np.ascontiguousarray(weight.T)})
    if not context.explains(tensor, candidate[tensor]):
        return None
    if tensor == "output" or context.explains("output", candidate["output"]):
        return WEIGHT_TRANSPOSED
    return "grad_input uses the transposed weight: grad_input = dout @ weight, with weight (out_features, in_features)"


LINEAR_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_input", "grad_weight", "grad_bias"), float32_arithmetic),
    (("output", "grad_input", "grad_weight"), weight_transposed),
    (("grad_bias",), bias_not_summed),
    (("grad_weight",), averaged_over_batch),
    (("grad_weight", "grad_bias"), assigned_not_accumulated),
]
"""The linear checks in the order they are tried: (tensors each applies to, check)."""
