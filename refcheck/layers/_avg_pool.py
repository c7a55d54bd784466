"""2-D average pooling, ``torch.nn.functional.avg_pool2d``, forward and backward.

The forward sums windows separably, rows then columns (``kh + kw`` strided passes instead of
``kh * kw``), reading only real input (no padded copy); the backward is the adjoint of the same
sums, computed per stride phase so that every input element is written once. The divisor follows
torch's CPU kernel.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._pool_geometry import (
    _axes,
    _Axis,
    pooling_input,
)

__all__ = ["avg_pool2d_backward", "avg_pool2d_forward"]


def _avg_divisor(
    rows: _Axis, cols: _Axis, count_include_pad: bool, divisor_override: int | None, dtype: Any
) -> np.ndarray:
    """Per-window divisor (H_out, W_out) following torch's CPU avg_pool2d kernel."""
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("divisor_override must be non-zero")
        return np.full((rows.out, cols.out), divisor_override, dtype=dtype)
    if count_include_pad:
        counts = rows.window_full[:, None] * cols.window_full[None, :]
    else:
        counts = rows.window_clipped[:, None] * cols.window_clipped[None, :]
    return counts.astype(dtype)


def _real_reads(axis: _Axis) -> list[tuple[slice, slice]]:
    """Per kernel offset, the outputs whose window reads a real input element there, and those elements.

    Output ``o`` reads input ``o*s + k*d - p`` at offset ``k``; the pair is (slice of ``o``, strided
    slice of the input positions), skipping offsets that only ever read padding or overhang.
    """
    pairs = []
    for k in range(axis.kernel):
        shift = k * axis.dilation - axis.padding
        first = max(0, -(shift // axis.stride))  # ceil(-shift / s), at least 0
        last = min(axis.out, (axis.size - 1 - shift) // axis.stride + 1)  # exclusive
        if last > first:
            start = first * axis.stride + shift
            pairs.append((slice(first, last), slice(start, start + (last - first - 1) * axis.stride + 1, axis.stride)))
    return pairs


def _window_sums(values: np.ndarray, axis: _Axis, along: int) -> np.ndarray:
    """Sum of every window along one axis (``along`` is -1 or -2), over its real elements only.

    An offset that every window reads inside the input starts the sums by assignment (else a
    zero fill); the other offsets add their strided slices.
    """
    shape = list(values.shape)
    shape[along] = axis.out

    def at(index: slice) -> tuple:
        return (Ellipsis, index) if along == -1 else (Ellipsis, index, slice(None))

    reads = sorted(_real_reads(axis), key=lambda pair: pair[0].stop - pair[0].start, reverse=True)
    if reads and (reads[0][0].start, reads[0][0].stop) == (0, axis.out):
        total = values[at(reads[0][1])].copy()
        reads = reads[1:]
    else:
        total = np.zeros(shape, dtype=values.dtype)
    for out_part, in_part in reads:
        total[at(out_part)] += values[at(in_part)]
    return total


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """2-D average pooling, ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size, stride, padding : (int, int)
        ``padding <= kernel // 2``.
    ceil_mode : bool
        See :mod:`refcheck.layers.pooling` for the output-size rule (dilation 1).
    count_include_pad : bool
        Divisor counts zero padding; the part of a ceil_mode window that hangs past the
        right padding never counts. Otherwise only real input elements count.
    divisor_override : int or None
        If given, every window sum is divided by it instead.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
        Window sum over real input elements divided by the divisor.
    cache : dict
    """
    x = pooling_input(x)
    rows, cols = _axes(x, kernel_size, stride, padding, (1, 1), ceil_mode)
    # The window sum is separable: sum the kernel rows, then the kernel columns, each offset
    # adding only the windows that read real input there (zero padding adds nothing).
    row_sums = _window_sums(x, rows, -2)  # (..., H_out, W)
    total = _window_sums(row_sums, cols, -1)
    divisor = _avg_divisor(rows, cols, count_include_pad, divisor_override, x.dtype)
    cache = {"divisor": divisor, "rows": rows, "cols": cols, "shape": x.shape, "dtype": x.dtype}
    return total / divisor, cache


def _gather_windows(values: np.ndarray, axis: _Axis, along: int) -> np.ndarray:
    """Adjoint of a window sum along one axis: input ``r`` gets the sum of ``values[o]`` over the windows it is in.

    Computed per stride phase (inputs ``r = ph + s*q``), where window ``o = q + shift`` holds ``r``
    for each kernel offset ``k`` with ``ph + p - k*d = s*shift``: every input is written once, by
    assignment from one offset and additions from the others, instead of a zero fill and a
    scatter-add per offset.
    """
    shape = list(values.shape)
    shape[along] = axis.size
    result = np.empty(shape, dtype=values.dtype)

    def at(index: slice) -> tuple:
        return (Ellipsis, index) if along == -1 else (Ellipsis, index, slice(None))

    for phase in range(min(axis.stride, axis.size)):
        target = result[at(slice(phase, None, axis.stride))]
        count = target.shape[along]
        terms = []  # (first q, end q, shift): inputs q in [first, end) read window q + shift
        for k in range(axis.kernel):
            shift, rest = divmod(phase + axis.padding - k * axis.dilation, axis.stride)
            first, end = max(0, -shift), min(count, axis.out - shift)
            if rest == 0 and end > first:
                terms.append((first, end, shift))
        terms.sort(key=lambda term: term[1] - term[0], reverse=True)  # a full-length term first
        if not terms or terms[0][:2] != (0, count):
            target[...] = 0
            start = 0
        else:
            target[...] = values[at(slice(terms[0][2], terms[0][2] + count))]
            start = 1
        for first, end, shift in terms[start:]:
            target[at(slice(first, end))] += values[at(slice(first + shift, end + shift))]
    return result


def avg_pool2d_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Gradient of :func:`avg_pool2d_forward`: ``dout / divisor`` spread over each window.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H_out, W_out)
    cache : dict from the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    share = np.asarray(dout, dtype=cache["dtype"]) / cache["divisor"]
    rows, cols = cache["rows"], cache["cols"]
    # Adjoint of the separable sum: spread over the kernel columns, then over the kernel rows.
    spread = _gather_windows(share, cols, -1)  # (..., H_out, W)
    return _gather_windows(spread, rows, -2)
