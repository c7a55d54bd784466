"""conv1d, conv3d and conv_transpose2d mistakes, as for conv2d: a kernel flipped (a true
convolution for conv1d/conv3d; conv_transpose2d computed as a cross-correlation, i.e. the kernel not
flipped), conv_transpose2d's weight read in conv2d's (C_out, C_in/groups) layout."""
from __future__ import annotations

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic

__all__ = ["CONV_ND_CHECKS"]


def _rotated(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.flip(kernel, axis=tuple(range(2, kernel.ndim))))


def kernel_flipped(context: Context, tensor: str) -> str | None:
    flipped = context.torch("flipped_kernel", tensors={"weight": _rotated(context.wide("weight"))})
    transpose = context.layer == "conv_transpose2d"
    forward_flipped = context.explains("output", flipped["output"])
    forward_message = ("kernel not flipped: conv_transpose2d stamps the kernel as it is (a full convolution); "
                       "written as a cross-correlation of the padded, stride-dilated input it needs the kernel "
                       "rotated by 180 degrees" if transpose else
                       f"kernel flipped: your {context.layer} is a true convolution; torch's is a cross-correlation")
    if tensor == "output":
        return forward_message if forward_flipped else None
    if tensor == "grad_input" and context.explains(tensor, flipped["grad_input"]):
        return forward_message if forward_flipped else f"kernel rotated wrongly in the backward of {context.layer}"
    if tensor == "grad_weight" and (context.explains(tensor, _rotated(flipped["grad_weight"]))
                                    or context.explains(tensor, _rotated(context.reference(tensor)))):
        return forward_message if forward_flipped else "weight gradient rotated by 180 degrees"
    return None


def transposed_weight_layout(context: Context, tensor: str) -> str | None:
    """conv_transpose2d with the weight read as (C_out, C_in / groups, kh, kw), conv2d's layout."""
    weight = context.wide("weight")
    if context.layer != "conv_transpose2d" or context.hparams["groups"] != 1 or weight.shape[0] != weight.shape[1]:
        return None
    swapped = np.ascontiguousarray(weight.swapaxes(0, 1))
    candidate = context.torch("weight_swapped", tensors={"weight": swapped})
    value = candidate[tensor].swapaxes(0, 1) if tensor == "grad_weight" else candidate[tensor]
    if context.explains(tensor, value):
        return ("weight layout: conv_transpose2d's weight is (C_in, C_out/groups, kh, kw), input channels first; "
                "you read it as conv2d's (C_out, C_in/groups, kh, kw)")
    return None


CONV_ND_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_input", "grad_weight", "grad_bias"), float32_arithmetic),
    (("output", "grad_input", "grad_weight"), kernel_flipped),
    (("output", "grad_input", "grad_weight"), transposed_weight_layout),
]
