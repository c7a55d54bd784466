"""2-D average pooling, ``torch.nn.functional.avg_pool2d``, forward and backward.

The forward sums windows separably, rows then columns (``kh + kw`` strided passes instead of
``kh * kw``), and non-overlapping windows (stride == kernel, no padding) by reshape-and-sum; the
backward is the adjoint of the same sums. The divisor follows torch's CPU kernel.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._pool_geometry import (
    _axes,
    _Axis,
    _disjoint_tiles,
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
    if _disjoint_tiles(rows, cols):
        # stride == kernel, no padding: the windows tile the input; reshape and sum.
        # (numpy reduces a short LAST axis slowly, so the kernel columns are added as slices.)
        tiles = x[..., : rows.out * rows.kernel, : cols.out * cols.kernel].reshape(
            x.shape[:-2] + (rows.out, rows.kernel, cols.out, cols.kernel)
        )
        row_sums = tiles.sum(axis=-3)  # (..., H_out, W_out, kw)
        total = row_sums[..., 0].copy()
        for j in range(1, cols.kernel):
            total += row_sums[..., j]
    else:
        # The window sum is separable: sum the kernel rows, then the kernel columns, each offset
        # adding only the windows that read real input there (zero padding adds nothing).
        row_sums = np.zeros(x.shape[:-2] + (rows.out, cols.size), dtype=x.dtype)
        for out_part, in_part in _real_reads(rows):
            row_sums[..., out_part, :] += x[..., in_part, :]
        total = np.zeros(x.shape[:-2] + (rows.out, cols.out), dtype=x.dtype)
        for out_part, in_part in _real_reads(cols):
            total[..., out_part] += row_sums[..., in_part]
    divisor = _avg_divisor(rows, cols, count_include_pad, divisor_override, x.dtype)
    cache = {"divisor": divisor, "rows": rows, "cols": cols, "shape": x.shape, "dtype": x.dtype}
    return total / divisor, cache


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
    lead = share.shape[:-2]
    if _disjoint_tiles(rows, cols):
        grad = np.zeros(cache["shape"], dtype=cache["dtype"])
        tiles = grad[..., : rows.out * rows.kernel, : cols.out * cols.kernel].reshape(
            lead + (rows.out, rows.kernel, cols.out, cols.kernel)
        )  # a view when the input is tiled exactly, else written back below
        for j in range(cols.kernel):
            tiles[..., j] = share[..., :, None, :]
        grad[..., : rows.out * rows.kernel, : cols.out * cols.kernel] = tiles.reshape(
            lead + (rows.out * rows.kernel, cols.out * cols.kernel)
        )
        return grad
    # Adjoint of the separable sum: spread over the kernel columns, then over the kernel rows.
    spread = np.zeros(lead + (rows.out, cols.size), dtype=cache["dtype"])
    for out_part, in_part in _real_reads(cols):
        spread[..., in_part] += share[..., out_part]
    grad = np.zeros(cache["shape"], dtype=cache["dtype"])
    for out_part, in_part in _real_reads(rows):
        grad[..., in_part, :] += spread[..., out_part, :]
    return grad
