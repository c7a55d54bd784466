"""Pooling mistakes: max pooling padded with zeros instead of -inf, ties sent to every maximum or
to the last one, the gradient sent to each window's first element, a window sum (or its gradient)
not divided by the window size, overlapping windows assigned instead of accumulated,
count_include_pad, divisor_override or ceil_mode ignored."""
from __future__ import annotations

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic, nhwc_layout

__all__ = ["POOLING_CHECKS"]

ACCUMULATE = ("overlapping windows assigned instead of accumulated: an input in several windows receives the "
              "sum of their gradients (use +=, or np.add.at, not assignment)")


def _geometry(context: Context) -> tuple[tuple[int, int], ...]:
    """(kernel, stride, padding, dilation) pairs of a max or average pooling case."""
    hp = context.hparams
    return hp["kernel_size"], hp["stride"], hp.get("padding", (0, 0)), hp.get("dilation", (1, 1))


def _offset_slices(size: int, kernel: int, stride: int, padding: int, dilation: int,
                   out: int) -> tuple[int, list[slice]]:
    """Length of a padded buffer holding every window, and for each kernel offset the slice of
    that buffer seen by the ``out`` windows (input element y sits at y + padding)."""
    length = max(size + 2 * padding, (out - 1) * stride + dilation * (kernel - 1) + 1)
    return length, [slice(i * dilation, i * dilation + (out - 1) * stride + 1, stride) for i in range(kernel)]


def _neg_inf_windows(context: Context):
    """The input in a -inf padded buffer, with the per-offset slices of both axes."""
    x = context.wide("input")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _geometry(context)
    height, width = x.shape[-2:]
    out_h, out_w = context.reference("output").shape[-2:]
    length_h, rows = _offset_slices(height, kh, sh, ph, dh, out_h)
    length_w, cols = _offset_slices(width, kw, sw, pw, dw, out_w)
    buffer = np.full(x.shape[:-2] + (length_h, length_w), -np.inf)
    buffer[..., ph:ph + height, pw:pw + width] = x
    return buffer, rows, cols


def zero_padding(context: Context, tensor: str) -> str | None:
    """max_pool2d on an input padded with zeros: a window of negative values then has maximum 0."""
    ph, pw = context.hparams["padding"]
    if ph == pw == 0:
        return None
    padded = np.pad(context.wide("input"), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    shape = context.run.spec.output_shape({"input": padded.shape}, {**context.hparams, "padding": (0, 0)})
    out_h, out_w = context.reference("output").shape[-2:]
    if shape[2] < out_h or shape[3] < out_w:
        return None
    dout = np.zeros(shape)
    dout[:, :, :out_h, :out_w] = context.wide("dout")
    candidate = context.torch("zero_padded", tensors={"input": padded}, hparams={"padding": (0, 0)}, dout=dout)
    height, width = context.tensors["input"].shape[-2:]
    message = ("max pooling padded with zeros: padding must act as -inf (never the maximum); "
               "pad with -inf or leave padded positions out of the max")
    result = context.result(tensor)
    if tensor == "output" and result is not None and result.shape == shape != context.reference(tensor).shape:
        # With ceil_mode, pooling the zero-padded array may also keep a window torch drops.
        return message if context.close(tensor, result, candidate["output"]) else None
    value = (candidate["output"][:, :, :out_h, :out_w] if tensor == "output"
             else candidate["grad_input"][:, :, ph:ph + height, pw:pw + width])
    return message if context.explains(tensor, value) else None


def ties_to_every_maximum(context: Context, tensor: str) -> str | None:
    """Every element equal to its window's maximum gets the window's gradient."""
    buffer, rows, cols = _neg_inf_windows(context)
    out, dout = context.reference("output"), context.wide("dout")
    grad = np.zeros_like(buffer)
    for row in rows:
        for col in cols:
            grad[..., row, col] += np.where(buffer[..., row, col] == out, dout, 0.0)
    (ph, pw) = context.hparams["padding"]
    height, width = context.tensors["input"].shape[-2:]
    if context.explains(tensor, grad[..., ph:ph + height, pw:pw + width]):
        return ("ties sent to every maximum: when a window holds equal maxima, torch sends the gradient "
                "to the first one in row-major order only")
    return None


def _routed(context: Context, pick) -> np.ndarray:  # noqa: ANN001 - (K, N, C, OH, OW) values -> offset index
    """grad_input when each window sends its whole dout to the one element ``pick`` chooses among
    its kernel offsets (row-major), given the window's values at every offset."""
    buffer, rows, cols = _neg_inf_windows(context)
    offsets = [(row, col) for row in rows for col in cols]
    chosen = pick(np.stack([buffer[..., row, col] for row, col in offsets]))
    dout = context.wide("dout")
    grad = np.zeros_like(buffer)
    for index, (row, col) in enumerate(offsets):
        grad[..., row, col] += np.where(chosen == index, dout, 0.0)
    (ph, pw) = context.hparams["padding"]
    height, width = context.tensors["input"].shape[-2:]
    return grad[..., ph:ph + height, pw:pw + width]


def tie_to_the_last_maximum(context: Context, tensor: str) -> str | None:
    """A window's gradient sent to its last maximum, where torch takes the first."""
    candidate = _routed(context, lambda values: len(values) - 1 - np.argmax(values[::-1], axis=0))
    if context.explains(tensor, candidate):
        return ("ties sent to the last maximum: when a window holds equal maxima, torch sends the gradient to "
                "the first one in row-major order (np.argmax's choice; > not >= when scanning)")
    return None


def gradient_to_the_first_element(context: Context, tensor: str) -> str | None:
    """Every window's gradient sent to its first element, whatever its maximum."""
    candidate = _routed(context, lambda values: np.zeros(values.shape[1:], dtype=np.int64))
    if context.explains(tensor, candidate):
        return ("gradient sent to each window's first element, not to its maximum: route dout to the position of "
                "the window's maximum (its argmax, kept from the forward)")
    return None


def window_sum_not_divided(context: Context, tensor: str) -> str | None:
    """avg_pool2d's window sum (or its gradient) not divided by the number of elements."""
    if context.hparams.get("divisor_override") is not None:
        return None
    candidate = context.torch("undivided", hparams={"divisor_override": 1})
    if not context.explains(tensor, candidate[tensor]):
        return None
    if tensor == "output":
        return "window sum not divided by the window size: average pooling divides each window's sum by its count"
    return ("gradient not divided by the window size: each window's dout reaches its elements divided by the "
            "window's count, as the forward divides its sum")


def _max_assigned(context: Context) -> np.ndarray:
    """grad_input when each window *assigns* dout to its first maximum, windows in row-major order."""
    buffer, rows, cols = _neg_inf_windows(context)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _geometry(context)
    out, dout = context.reference("output"), context.wide("dout")
    best_value = np.full(out.shape, -np.inf)
    best_offset = np.zeros(out.shape, dtype=np.int64)
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            candidate = buffer[..., row, col]
            take = candidate > best_value  # strict: ties keep the first maximum, as torch
            best_value = np.where(take, candidate, best_value)
            best_offset = np.where(take, i * kw + j, best_offset)
    batch, channels, out_h, out_w = out.shape
    height, width = context.tensors["input"].shape[-2:]
    window_row = np.arange(out_h)[:, None] * sh - ph + (best_offset // kw) * dh
    window_col = np.arange(out_w)[None, :] * sw - pw + (best_offset % kw) * dw
    plane = np.arange(batch * channels).reshape(batch, channels, 1, 1)
    position = (plane * height + window_row) * width + window_col
    window = plane * (out_h * out_w) + np.arange(out_h * out_w).reshape(out_h, out_w)
    # The last window (row-major) that selects a position is the one whose assignment stays.
    winner = np.full(batch * channels * height * width, -1, dtype=np.int64)
    np.maximum.at(winner, position.ravel(), window.ravel())
    grad = np.zeros(winner.shape)
    grad[winner >= 0] = dout.ravel()[winner[winner >= 0]]
    return grad.reshape(batch, channels, height, width)


def _last_window(size: int, kernel: int, stride: int, padding: int, out: int) -> np.ndarray:
    """For each input position along an axis, the last window covering it (-1 if none)."""
    starts = np.arange(out) * stride - padding
    position = np.arange(size)[:, None]
    covers = (position >= starts) & (position < starts + kernel)
    return np.where(covers.any(axis=1), out - 1 - np.argmax(covers[:, ::-1], axis=1), -1)


def _avg_assigned(context: Context) -> np.ndarray:
    """grad_input when each window *assigns* dout / divisor to its elements, windows in row-major order."""
    (kh, kw), (sh, sw), (ph, pw), _ = _geometry(context)
    x = context.wide("input")
    height, width = x.shape[-2:]
    out_h, out_w = context.reference("output").shape[-2:]
    # divisor = real elements / average of ones (torch's divisor rule without restating it).
    ones = context.torch("ones", tensors={"input": np.ones_like(x)})["output"]
    starts_h, starts_w = np.arange(out_h) * sh - ph, np.arange(out_w) * sw - pw
    real_h = np.minimum(starts_h + kh, height) - np.maximum(starts_h, 0)
    real_w = np.minimum(starts_w + kw, width) - np.maximum(starts_w, 0)
    share = context.wide("dout") * ones / (real_h[:, None] * real_w[None, :])
    last_h = _last_window(height, kh, sh, ph, out_h)
    last_w = _last_window(width, kw, sw, pw, out_w)
    grad = share[:, :, np.maximum(last_h, 0)][:, :, :, np.maximum(last_w, 0)]
    return np.where((last_h[:, None] >= 0) & (last_w[None, :] >= 0), grad, 0.0)


def assigned_not_accumulated(context: Context, tensor: str) -> str | None:
    """Overlapping windows: the last window's gradient overwrites the earlier ones."""
    candidate = _max_assigned(context) if context.layer == "max_pool2d" else _avg_assigned(context)
    return ACCUMULATE if context.explains(tensor, candidate) else None


def ceil_mode_ignored(context: Context, tensor: str) -> str | None:
    """Output size rounded down although ceil_mode=True: the partial last windows are missing."""
    if not context.hparams["ceil_mode"]:
        return None
    floor = {**context.hparams, "ceil_mode": False}
    out_h, out_w = context.run.spec.output_shape(context.run.case.shape_map, floor)[2:]
    reference = context.reference("output")
    if (out_h, out_w) == reference.shape[2:]:
        return None
    message = (f"ceil_mode ignored: with ceil_mode=True the output is {reference.shape[2]}x{reference.shape[3]}, "
               f"rounding the window count up (the partial last window counts), not {out_h}x{out_w}")
    if tensor == "output":
        result = context.result(tensor)
        cropped = reference[:, :, :out_h, :out_w]
        if result is not None and result.ndim == 4 and context.close(tensor, result, cropped):
            return message
        return None
    dout = np.ascontiguousarray(context.wide("dout")[:, :, :out_h, :out_w])
    candidate = context.torch("floor_mode", hparams={"ceil_mode": False}, dout=dout)
    return message if context.explains(tensor, candidate[tensor]) else None


def count_include_pad_ignored(context: Context, tensor: str) -> str | None:
    """avg_pool2d's divisor with count_include_pad taken the other way."""
    if context.hparams["divisor_override"] is not None:
        return None
    include = context.hparams["count_include_pad"]
    candidate = context.torch("count_include_pad", hparams={"count_include_pad": not include})
    if not context.explains(tensor, candidate[tensor]):
        return None
    if include:
        return ("count_include_pad ignored: with count_include_pad=True the divisor counts the zero padding "
                "(kh * kw for a window inside the padded input)")
    return ("count_include_pad ignored: with count_include_pad=False divide by the number of real "
            "(non-padding) elements in each window")


def divisor_override_ignored(context: Context, tensor: str) -> str | None:
    """avg_pool2d divided by the window size although divisor_override is set."""
    divisor = context.hparams["divisor_override"]
    if divisor is None:
        return None
    candidate = context.torch("no_divisor_override", hparams={"divisor_override": None})
    if context.explains(tensor, candidate[tensor]):
        return f"divisor_override ignored: divide every window sum by divisor_override={divisor}"
    return None


_PRECISION = (("output", "grad_input"), float32_arithmetic)
_LAYOUT = (("output", "grad_input"), nhwc_layout)

POOLING_CHECKS: dict[str, list[tuple[tuple[str, ...], Check]]] = {
    "max_pool2d": [_PRECISION, (("output", "grad_input"), zero_padding), (("output", "grad_input"), ceil_mode_ignored),
                   (("grad_input",), ties_to_every_maximum), (("grad_input",), tie_to_the_last_maximum),
                   (("grad_input",), gradient_to_the_first_element), (("grad_input",), assigned_not_accumulated),
                   _LAYOUT],
    "avg_pool2d": [_PRECISION, (("output", "grad_input"), window_sum_not_divided),
                   (("output", "grad_input"), count_include_pad_ignored),
                   (("output", "grad_input"), divisor_override_ignored), (("output", "grad_input"), ceil_mode_ignored),
                   (("grad_input",), assigned_not_accumulated), _LAYOUT],
    "lp_pool2d": [_PRECISION, (("output", "grad_input"), ceil_mode_ignored), _LAYOUT],
    "adaptive_avg_pool2d": [_PRECISION, _LAYOUT],
    "adaptive_max_pool2d": [_PRECISION, _LAYOUT],
}
"""The pooling checks per layer, in the order they are tried: (tensors each applies to, check)."""
