"""conv2d mistakes: a flipped kernel, transposed weight layouts, a stride forgotten in the
backward, the forward padding cropped from the wrong place or by a slice that only fits some paddings
(``pad:-pad``, empty at padding 0; a hard-coded ``1:-1``, right only at padding 1), and 'same' padding
on the wrong side."""
from __future__ import annotations

import numpy as np

from .accumulated import assigned_not_accumulated
from .context import Check, Context
from .generic import averaged_over_batch, bias_not_summed, float32_arithmetic, nhwc_layout

__all__ = ["CONV2D_CHECKS"]

TRUE_CONVOLUTION = ("kernel flipped: your conv2d is a true convolution; torch's conv2d is a cross-correlation "
                    "(do not rotate the kernel in forward)")

Pair = tuple[int, int]


def _rotated(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel[..., ::-1, ::-1])


def _sides(context: Context) -> tuple[Pair, Pair]:
    """The forward padding per side, ((top, bottom), (left, right)), as torch applies it.

    'same' pads dilation * (k - 1) in total, the extra element of an odd total at the bottom/right.
    """
    padding = context.hparams["padding"]
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        kernel, dilation = context.tensors["weight"].shape[2:], context.hparams["dilation"]
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return (totals[0] // 2, totals[0] - totals[0] // 2), (totals[1] // 2, totals[1] - totals[1] // 2)
    return (padding[0], padding[0]), (padding[1], padding[1])


def _padded_input(context: Context, sides: tuple[Pair, Pair]) -> np.ndarray:
    return np.pad(context.wide("input"), ((0, 0), (0, 0), sides[0], sides[1]))


def kernel_flipped(context: Context, tensor: str) -> str | None:
    """Forward as a true convolution, or a backward that rotates the wrong kernel."""
    flipped = context.torch("flipped_kernel", tensors={"weight": _rotated(context.wide("weight"))})
    true_convolution = context.explains("output", flipped["output"])
    if tensor == "output":
        return TRUE_CONVOLUTION if true_convolution else None
    if tensor == "grad_input" and context.explains(tensor, flipped["grad_input"]):
        if true_convolution:
            return TRUE_CONVOLUTION
        return ("kernel not rotated in the backward: grad_input is a full convolution of the stride-dilated dout "
                "with the kernel rotated by 180 degrees")
    if tensor == "grad_weight" and context.explains(tensor, _rotated(context.reference(tensor))):
        if true_convolution:
            return TRUE_CONVOLUTION
        return ("weight gradient flipped: grad_weight[f, c, i, j] = sum of dout[n, f] * x_pad[n, c, .+i, .+j] "
                "(a cross-correlation); do not rotate it")
    return None


def weight_layout(context: Context, tensor: str) -> str | None:
    """(C, F, kh, kw) where torch has (F, C / groups, kh, kw), in the gradient or in the forward."""
    if tensor == "grad_weight":
        result = context.result(tensor)
        swapped = context.reference(tensor).swapaxes(0, 1)
        if result is not None and result.shape == swapped.shape and context.explains(tensor, swapped):
            return ("weight gradient layout transposed: return grad_weight as (F, C/groups, kh, kw) like the "
                    "weight, not (C/groups, F, kh, kw)")
        return None
    weight = context.wide("weight")
    if context.hparams["groups"] != 1 or weight.shape[0] != weight.shape[1]:
        return None  # a (C, F) reading of the weight would not even run
    transposed = context.torch("weight_cf", tensors={"weight": np.ascontiguousarray(weight.swapaxes(0, 1))})
    if context.explains(tensor, transposed[tensor]):
        return ("weight layout transposed: torch's conv2d weight is (F, C/groups, kh, kw), output channels first; "
                "you read it as (C, F, kh, kw)")
    return None


def stride_ignored(context: Context, tensor: str) -> str | None:
    """A backward that uses dout as if the stride were 1 (dout not dilated by the stride)."""
    if tuple(context.hparams["stride"]) == (1, 1):
        return None
    unit = {**context.hparams, "stride": (1, 1)}
    shape = context.run.spec.output_shape(context.run.case.shape_map, unit)
    # The undilated dout sits at the top-left of the stride-1 output; the rest of it is zero.
    compact = np.zeros(shape)
    oh, ow = context.dout.shape[2:]
    compact[:, :, :oh, :ow] = context.wide("dout")
    candidate = context.torch("stride_1_backward", hparams={"stride": (1, 1)}, dout=compact)
    if context.explains(tensor, candidate[tensor]):
        return (f"stride ignored in the backward: dout must be dilated by the stride {context.hparams['stride']} "
                f"(stride - 1 zeros between its elements) before computing {tensor}")
    return None


def padding_cropped(context: Context, tensor: str) -> str | None:
    """grad_input cut out of the padded input's gradient at the wrong offset."""
    sides = _sides(context)
    (top, bottom), (left, right) = sides
    if top + bottom + left + right == 0:
        return None
    padded = _padded_gradient(context, sides)
    height, width = context.tensors["input"].shape[2:]
    for row in range(top + bottom + 1):
        for col in range(left + right + 1):
            if (row, col) != (top, left) and context.explains(
                    tensor, padded[:, :, row:row + height, col:col + width]):
                return (f"padding cropped wrong: grad_input is the padded gradient cut at rows {row}:{row + height}, "
                        f"columns {col}:{col + width}; drop the forward padding, rows {top}:{top + height}, "
                        f"columns {left}:{left + width}")
    return None


def _padded_gradient(context: Context, sides: tuple[Pair, Pair]) -> np.ndarray:
    """torch's gradient with respect to the padded input (what a backward crops the padding from)."""
    return context.torch("prepadded", tensors={"input": _padded_input(context, sides)},
                         hparams={"padding": (0, 0)})["grad_input"]


def cropped_by_negative_padding(context: Context, tensor: str) -> str | None:
    """grad_input cropped with ``[pad:-pad]``: right where the padding is positive, empty where it is 0.

    Recognised from the shape alone (there are no values to compare): the result is empty along
    exactly the spatial axes whose padding is 0 and has the input's size along the others.
    """
    result, reference = context.result(tensor), context.reference(tensor)
    sides = _sides(context)
    if result is None or reference is None or result.ndim != 4 or result.shape[:2] != reference.shape[:2]:
        return None
    zero_axes = [index for index, (before, _) in enumerate(sides) if before == 0]
    expected = tuple(0 if axis in zero_axes else size for axis, size in enumerate(reference.shape[2:]))
    if not zero_axes or result.shape[2:] != expected:
        return None
    return ("padding cropped with [pad:-pad]: at padding 0 that slice is empty (x[0:-0] is x[0:0]), so grad_input "
            f"has shape {result.shape}; crop with [pad:pad + H, pad:pad + W] (or [pad:H_padded - pad]) instead")


def cropped_by_one(context: Context, tensor: str) -> str | None:
    """grad_input cropped with a hard-coded ``[1:-1, 1:-1]``: right at padding 1 only."""
    sides = _sides(context)
    if all(side == (1, 1) for side in sides):
        return None
    padded = _padded_gradient(context, sides)
    if min(padded.shape[2:]) < 3 or not context.explains(tensor, padded[:, :, 1:-1, 1:-1]):
        return None
    padding = tuple(before for before, _ in sides)
    return (f"padding cropped with a hard-coded [1:-1]: that drops one row and column on each side, right only "
            f"at padding 1; at padding {padding} crop the forward padding, "
            "[pad_h:pad_h + H, pad_w:pad_w + W]")


def same_padding_side(context: Context, tensor: str) -> str | None:
    """padding='same' with an odd total padding, the extra row/column put at the top/left."""
    sides = _sides(context)
    if context.hparams["padding"] != "same" or all(a == b for a, b in sides):
        return None
    mirrored = ((sides[0][1], sides[0][0]), (sides[1][1], sides[1][0]))
    candidate = context.torch("same_mirrored", tensors={"input": _padded_input(context, mirrored)},
                              hparams={"padding": (0, 0)})
    value = candidate[tensor]
    if tensor == "grad_input":
        height, width = context.tensors["input"].shape[2:]
        value = value[:, :, mirrored[0][0]:mirrored[0][0] + height, mirrored[1][0]:mirrored[1][0] + width]
    if context.explains(tensor, value):
        return ("padding='same' on the wrong side: when the total padding dilation * (k - 1) is odd, torch puts "
                "the extra row/column at the bottom/right, not the top/left")
    return None


CONV2D_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_input", "grad_weight", "grad_bias"), float32_arithmetic),
    (("output", "grad_input", "grad_weight"), kernel_flipped),
    (("output", "grad_input", "grad_weight"), weight_layout),
    (("grad_input", "grad_weight"), stride_ignored),
    (("grad_input",), padding_cropped),
    (("grad_input",), cropped_by_negative_padding),
    (("grad_input",), cropped_by_one),
    (("output", "grad_input"), same_padding_side),
    (("grad_bias",), bias_not_summed),
    (("grad_weight",), averaged_over_batch),
    (("grad_weight", "grad_bias"), assigned_not_accumulated),
    (("output", "grad_input"), nhwc_layout),
]
"""The conv2d checks in the order they are tried: (tensors each applies to, check)."""
