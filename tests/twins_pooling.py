"""Slow, obviously-correct loop versions of the pooling layers, used as test oracles.

Every function visits each output pixel and each element of its window one at a time and
follows torch's rules literally; nothing is vectorised. Signatures mirror
``refcheck.layers.pooling`` and ``refcheck.layers.adaptive``.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "window_count_loops",
    "max_pool2d_forward_loops",
    "max_pool2d_backward_loops",
    "avg_pool2d_forward_loops",
    "avg_pool2d_backward_loops",
    "lp_pool2d_forward_loops",
    "lp_pool2d_backward_loops",
    "adaptive_avg_pool2d_forward_loops",
    "adaptive_avg_pool2d_backward_loops",
    "adaptive_max_pool2d_forward_loops",
    "adaptive_max_pool2d_backward_loops",
]


def window_count_loops(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """Count windows one by one. In padded coordinates window ``k`` starts at ``k * stride``.

    Without ceil_mode a window exists when it fits inside the padded input. With ceil_mode a
    window exists when it starts inside the input or the left padding and the window one
    stride earlier did not already reach the end of the padded input.
    """
    effective = dilation * (kernel - 1) + 1
    padded_end = size + 2 * padding
    count = 0
    while True:
        start = count * stride
        if ceil_mode:
            exists = start < size + padding and start - stride + effective < padded_end
        else:
            exists = start + effective <= padded_end
        if not exists:
            return count
        count += 1


def _inside(index: int, size: int) -> bool:
    return 0 <= index < size


def max_pool2d_forward_loops(
    x: np.ndarray, *, kernel_size, stride, padding, dilation, ceil_mode
) -> tuple[np.ndarray, dict[str, Any]]:
    batch, channels, height, width = x.shape
    out_h = window_count_loops(
        height, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    out_w = window_count_loops(
        width, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    out = np.empty((batch, channels, out_h, out_w), dtype=x.dtype)
    chosen: dict[tuple[int, int, int, int], tuple[int, int]] = {}
    for n in range(batch):
        for c in range(channels):
            for oh in range(out_h):
                for ow in range(out_w):
                    best = None
                    where = None
                    for i in range(kernel_size[0]):
                        for j in range(kernel_size[1]):
                            r = oh * stride[0] - padding[0] + i * dilation[0]
                            q = ow * stride[1] - padding[1] + j * dilation[1]
                            if not (_inside(r, height) and _inside(q, width)):
                                continue  # padding never wins
                            value = x[n, c, r, q]
                            # first real element; then strictly greater (first max) or NaN
                            if best is None or value > best or math.isnan(value):
                                best, where = value, (r, q)
                    out[n, c, oh, ow] = -np.inf if best is None else best
                    if where is not None:
                        chosen[(n, c, oh, ow)] = where
    return out, {"chosen": chosen, "shape": x.shape, "dtype": x.dtype}


def max_pool2d_backward_loops(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    dx = np.zeros(cache["shape"], dtype=cache["dtype"])
    for (n, c, oh, ow), (r, q) in cache["chosen"].items():
        dx[n, c, r, q] += dout[n, c, oh, ow]
    return dx


def avg_pool2d_forward_loops(
    x: np.ndarray, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
) -> tuple[np.ndarray, dict[str, Any]]:
    batch, channels, height, width = x.shape
    out_h = window_count_loops(height, kernel_size[0], stride[0], padding[0], 1, ceil_mode)
    out_w = window_count_loops(width, kernel_size[1], stride[1], padding[1], 1, ceil_mode)
    out = np.empty((batch, channels, out_h, out_w), dtype=x.dtype)
    divisors = np.empty((out_h, out_w))
    for oh in range(out_h):
        for ow in range(out_w):
            in_padded = 0  # window elements inside input + padding (not the ceil overhang)
            in_input = 0
            for i in range(kernel_size[0]):
                for j in range(kernel_size[1]):
                    r = oh * stride[0] - padding[0] + i
                    q = ow * stride[1] - padding[1] + j
                    row_in_padded = -padding[0] <= r < height + padding[0]
                    col_in_padded = -padding[1] <= q < width + padding[1]
                    if row_in_padded and col_in_padded:
                        in_padded += 1
                    if _inside(r, height) and _inside(q, width):
                        in_input += 1
            if divisor_override is not None:
                divisors[oh, ow] = divisor_override
            else:
                divisors[oh, ow] = in_padded if count_include_pad else in_input
    for n in range(batch):
        for c in range(channels):
            for oh in range(out_h):
                for ow in range(out_w):
                    total = 0.0
                    for i in range(kernel_size[0]):
                        for j in range(kernel_size[1]):
                            r = oh * stride[0] - padding[0] + i
                            q = ow * stride[1] - padding[1] + j
                            if _inside(r, height) and _inside(q, width):
                                total += x[n, c, r, q]
                    out[n, c, oh, ow] = total / divisors[oh, ow]
    cache = {"divisors": divisors, "shape": x.shape, "dtype": x.dtype,
             "kernel_size": kernel_size, "stride": stride, "padding": padding}
    return out, cache


def avg_pool2d_backward_loops(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    batch, channels, height, width = cache["shape"]
    kernel_size, stride, padding = cache["kernel_size"], cache["stride"], cache["padding"]
    dx = np.zeros(cache["shape"], dtype=np.float64)
    for n in range(batch):
        for c in range(channels):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    share = dout[n, c, oh, ow] / cache["divisors"][oh, ow]
                    for i in range(kernel_size[0]):
                        for j in range(kernel_size[1]):
                            r = oh * stride[0] - padding[0] + i
                            q = ow * stride[1] - padding[1] + j
                            if _inside(r, height) and _inside(q, width):
                                dx[n, c, r, q] += share
    return dx.astype(cache["dtype"])


def lp_pool2d_forward_loops(
    x: np.ndarray, *, norm_type, kernel_size, stride, ceil_mode
) -> tuple[np.ndarray, dict[str, Any]]:
    """Window power sum times ``kh * kw / count`` (count = in-input elements), to ``1 / p``.

    Odd powers keep their sign; a negative sum gives itself for ``p = 1`` and NaN otherwise.
    """
    p = float(norm_type)
    batch, channels, height, width = x.shape
    out_h = window_count_loops(height, kernel_size[0], stride[0], 0, 1, ceil_mode)
    out_w = window_count_loops(width, kernel_size[1], stride[1], 0, 1, ceil_mode)
    area = kernel_size[0] * kernel_size[1]
    out = np.empty((batch, channels, out_h, out_w), dtype=x.dtype)
    scaled_sums = np.empty(out.shape)
    for n in range(batch):
        for c in range(channels):
            for oh in range(out_h):
                for ow in range(out_w):
                    power_sum = 0.0
                    count = 0
                    for i in range(kernel_size[0]):
                        for j in range(kernel_size[1]):
                            r = oh * stride[0] + i
                            q = ow * stride[1] + j
                            if _inside(r, height) and _inside(q, width):
                                power_sum += float(x[n, c, r, q]) ** p
                                count += 1
                    scaled = power_sum * area / count
                    scaled_sums[n, c, oh, ow] = scaled
                    if scaled >= 0:
                        out[n, c, oh, ow] = scaled ** (1.0 / p)
                    else:
                        out[n, c, oh, ow] = scaled if p == 1.0 else math.nan
    cache = {"x": x, "p": p, "scaled": scaled_sums, "area": area,
             "kernel_size": kernel_size, "stride": stride}
    return out, cache


def lp_pool2d_backward_loops(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """d out / d x_e = scaled ** (1/p - 1) * (kh * kw / count) * x_e ** (p - 1); zero where the
    scaled sum is exactly zero (torch's convention), NaN where the output is NaN."""
    x, p = cache["x"], cache["p"]
    kernel_size, stride = cache["kernel_size"], cache["stride"]
    batch, channels, height, width = x.shape
    dx = np.zeros(x.shape, dtype=np.float64)
    for n in range(batch):
        for c in range(channels):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    scaled = cache["scaled"][n, c, oh, ow]
                    members = []
                    for i in range(kernel_size[0]):
                        for j in range(kernel_size[1]):
                            r, q = oh * stride[0] + i, ow * stride[1] + j
                            if _inside(r, height) and _inside(q, width):
                                members.append((r, q))
                    if scaled == 0:
                        continue
                    if scaled < 0 and p != 1.0:
                        outer = math.nan
                    else:
                        outer = abs(scaled) ** (1.0 / p - 1.0)
                    for r, q in members:
                        rescale = cache["area"] / len(members)
                        local = outer * rescale * float(x[n, c, r, q]) ** (p - 1.0)
                        dx[n, c, r, q] += dout[n, c, oh, ow] * local
    return dx.astype(x.dtype)


def _adaptive_bounds_loops(size: int, out_size: int, index: int) -> range:
    """Window ``index`` spans ``[floor(index * L / n), ceil((index + 1) * L / n))``,
    with ``L = size`` and ``n = out_size``, in integer arithmetic."""
    start = (index * size) // out_size
    end = ((index + 1) * size + out_size - 1) // out_size
    return range(start, end)


def _adaptive_windows_loops(
    shape: tuple[int, ...], output_size
) -> Iterator[tuple[tuple[int, int, int, int], range, range]]:
    """Every output position ``(n, c, oh, ow)`` with the input rows and columns of its window."""
    batch, channels, height, width = shape
    for n in range(batch):
        for c in range(channels):
            for oh in range(output_size[0]):
                rows = _adaptive_bounds_loops(height, output_size[0], oh)
                for ow in range(output_size[1]):
                    cols = _adaptive_bounds_loops(width, output_size[1], ow)
                    yield (n, c, oh, ow), rows, cols


def adaptive_avg_pool2d_forward_loops(
    x: np.ndarray, *, output_size
) -> tuple[np.ndarray, dict[str, Any]]:
    batch, channels = x.shape[:2]
    out = np.empty((batch, channels) + tuple(output_size), dtype=x.dtype)
    for (n, c, oh, ow), rows, cols in _adaptive_windows_loops(x.shape, output_size):
        total = 0.0
        for r in rows:
            for q in cols:
                total += x[n, c, r, q]
        out[n, c, oh, ow] = total / (len(rows) * len(cols))
    return out, {"shape": x.shape, "dtype": x.dtype, "output_size": tuple(output_size)}


def adaptive_avg_pool2d_backward_loops(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    dx = np.zeros(cache["shape"], dtype=np.float64)
    for (n, c, oh, ow), rows, cols in _adaptive_windows_loops(cache["shape"], cache["output_size"]):
        share = dout[n, c, oh, ow] / (len(rows) * len(cols))
        for r in rows:
            for q in cols:
                dx[n, c, r, q] += share
    return dx.astype(cache["dtype"])


def adaptive_max_pool2d_forward_loops(
    x: np.ndarray, *, output_size
) -> tuple[np.ndarray, dict[str, Any]]:
    batch, channels = x.shape[:2]
    out = np.empty((batch, channels) + tuple(output_size), dtype=x.dtype)
    chosen: dict[tuple[int, int, int, int], tuple[int, int]] = {}
    for (n, c, oh, ow), rows, cols in _adaptive_windows_loops(x.shape, output_size):
        best = None
        for r in rows:
            for q in cols:
                value = x[n, c, r, q]
                if best is None or value > best or math.isnan(value):
                    best = value
                    chosen[(n, c, oh, ow)] = (r, q)
        out[n, c, oh, ow] = best
    return out, {"chosen": chosen, "shape": x.shape, "dtype": x.dtype}


def adaptive_max_pool2d_backward_loops(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    return max_pool2d_backward_loops(dout, cache)
