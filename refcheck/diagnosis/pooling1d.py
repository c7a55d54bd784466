"""1-D pooling mistakes, the 2-D ideas along one axis: overlapping windows assigned instead of
accumulated, ties sent to every maximum (max_pool1d), count_include_pad ignored (avg_pool1d)."""
from __future__ import annotations

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic
from .pooling import ACCUMULATE, _offset_slices

__all__ = ["POOLING1D_CHECKS"]


def _geometry(context: Context) -> tuple[int, int, int, int]:
    hp = context.hparams
    return hp["kernel_size"], hp["stride"], hp.get("padding", 0), hp.get("dilation", 1)


def _windows(context: Context) -> tuple[np.ndarray, list[slice], int]:
    """The input in a -inf padded buffer, each kernel offset's slice of it, and the padding."""
    x = context.wide("input")
    kernel, stride, padding, dilation = _geometry(context)
    out = context.reference("output").shape[-1]
    length, offsets = _offset_slices(x.shape[-1], kernel, stride, padding, dilation, out)
    buffer = np.full(x.shape[:-1] + (length,), -np.inf)
    buffer[..., padding:padding + x.shape[-1]] = x
    return buffer, offsets, padding


def ties_to_every_maximum(context: Context, tensor: str) -> str | None:
    """Every element equal to its window's maximum gets the window's gradient."""
    buffer, offsets, padding = _windows(context)
    out, dout = context.reference("output"), context.wide("dout")
    grad = np.zeros_like(buffer)
    for offset in offsets:
        grad[..., offset] += np.where(buffer[..., offset] == out, dout, 0.0)
    if context.explains(tensor, grad[..., padding:padding + context.tensors["input"].shape[-1]]):
        return ("ties sent to every maximum: when a window holds equal maxima, torch sends the gradient "
                "to the first one only")
    return None


def _max_assigned(context: Context) -> np.ndarray:
    """grad_input when each window, in order, *assigns* dout to its first maximum."""
    buffer, offsets, padding = _windows(context)
    _, stride, _, dilation = _geometry(context)
    dout = context.wide("dout")
    first = np.argmax(np.stack([buffer[..., offset] for offset in offsets], axis=-1), axis=-1)  # first maximum
    grad = np.zeros_like(buffer)
    lead = np.indices(dout.shape[:-1])
    for window in range(dout.shape[-1]):
        grad[(*lead, window * stride + first[..., window] * dilation)] = dout[..., window]
    return grad[..., padding:padding + context.tensors["input"].shape[-1]]


def _avg_assigned(context: Context) -> np.ndarray:
    """grad_input when each window, in order, *assigns* dout / divisor to its real elements."""
    kernel, stride, padding, _ = _geometry(context)
    x = context.wide("input")
    length, out = x.shape[-1], context.reference("output").shape[-1]
    ones = context.torch("ones", tensors={"input": np.ones_like(x)})["output"]  # real count / divisor
    starts = np.arange(out) * stride - padding
    real = np.minimum(starts + kernel, length) - np.maximum(starts, 0)
    share = context.wide("dout") * ones / real
    grad = np.zeros_like(x)
    for window, start in enumerate(starts):
        grad[..., max(start, 0):min(start + kernel, length)] = share[..., window, None]
    return grad


def assigned_not_accumulated(context: Context, tensor: str) -> str | None:
    """Overlapping windows: the last window's gradient overwrites the earlier ones."""
    candidate = _max_assigned(context) if context.layer == "max_pool1d" else _avg_assigned(context)
    return ACCUMULATE if context.explains(tensor, candidate) else None


def count_include_pad_ignored(context: Context, tensor: str) -> str | None:
    """avg_pool1d's divisor with count_include_pad taken the other way."""
    include = context.hparams["count_include_pad"]
    candidate = context.torch("count_include_pad", hparams={"count_include_pad": not include})
    if not context.explains(tensor, candidate[tensor]):
        return None
    if include:
        return ("count_include_pad ignored: with count_include_pad=True the divisor counts the zero padding "
                "(kernel_size for a window inside the padded input)")
    return ("count_include_pad ignored: with count_include_pad=False divide by the number of real "
            "(non-padding) elements in each window")


_PRECISION = (("output", "grad_input"), float32_arithmetic)

POOLING1D_CHECKS: dict[str, list[tuple[tuple[str, ...], Check]]] = {
    "max_pool1d": [_PRECISION, (("grad_input",), ties_to_every_maximum), (("grad_input",), assigned_not_accumulated)],
    "avg_pool1d": [_PRECISION, (("output", "grad_input"), count_include_pad_ignored),
                   (("grad_input",), assigned_not_accumulated)],
}
"""The 1-D pooling checks per layer, in the order they are tried: (tensors each applies to, check)."""
