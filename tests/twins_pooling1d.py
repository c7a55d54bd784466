"""Slow loop twins of max_pool1d and avg_pool1d, independent oracles for the tests.

Windows are enumerated one at a time (in padded coordinates window ``o`` starts at ``o*s``) and
every element of every window is visited explicitly; gradients accumulate element by element.
Nothing here reuses refcheck.layers.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "avg_pool1d_backward_loops",
    "avg_pool1d_forward_loops",
    "max_pool1d_backward_loops",
    "max_pool1d_forward_loops",
    "window_starts",
]


def _int(value) -> int:
    """torch accepts an int or a 1-tuple."""
    return int(value) if np.ndim(value) == 0 else int(value[0])


def window_starts(size: int, kernel: int, stride: int, padding: int, dilation: int,
                  ceil_mode: bool) -> list[int]:
    """Start of each window in input coordinates, found by walking along the padded input.

    Without ceil_mode a window exists when it fits in the padded input. With ceil_mode it exists
    when it starts inside the input or the left padding and the previous window did not already
    reach the end of the padded input.
    """
    effective = dilation * (kernel - 1) + 1
    padded_end = size + 2 * padding
    starts = []
    while True:
        start = len(starts) * stride
        if ceil_mode:
            exists = start < size + padding and start - stride + effective < padded_end
        else:
            exists = start + effective <= padded_end
        if not exists:
            return starts
        starts.append(start - padding)


def max_pool1d_forward_loops(x, *, kernel_size, stride=None, padding=0, dilation=1,
                             ceil_mode=False) -> tuple[np.ndarray, dict[str, Any]]:
    kernel_size, padding, dilation = _int(kernel_size), _int(padding), _int(dilation)
    stride = kernel_size if stride is None else _int(stride)
    batch, channels, size = x.shape
    starts = window_starts(size, kernel_size, stride, padding, dilation, ceil_mode)
    out = np.empty((batch, channels, len(starts)), dtype=x.dtype)
    chosen = {}
    for n in range(batch):
        for c in range(channels):
            for o, start in enumerate(starts):
                best, where = None, None
                for j in range(kernel_size):
                    position = start + j * dilation
                    if not 0 <= position < size:
                        continue  # padding never wins
                    value = x[n, c, position]
                    # first real element; then strictly greater (first max on ties) or NaN
                    if best is None or value > best or np.isnan(value):
                        best, where = value, position
                out[n, c, o] = best
                chosen[n, c, o] = where
    return out, {"chosen": chosen, "shape": x.shape, "dtype": x.dtype}


def max_pool1d_backward_loops(dout, cache) -> tuple[np.ndarray]:
    grad = np.zeros(cache["shape"], dtype=cache["dtype"])
    for (n, c, o), position in cache["chosen"].items():
        grad[n, c, position] += dout[n, c, o]  # windows sharing a maximum add up
    return (grad,)


def avg_pool1d_forward_loops(x, *, kernel_size, stride=None, padding=0, ceil_mode=False,
                             count_include_pad=True) -> tuple[np.ndarray, dict[str, Any]]:
    kernel_size, padding = _int(kernel_size), _int(padding)
    stride = kernel_size if stride is None else _int(stride)
    batch, channels, size = x.shape
    starts = window_starts(size, kernel_size, stride, padding, 1, ceil_mode)
    out = np.empty((batch, channels, len(starts)), dtype=x.dtype)
    members, divisors = [], []
    for start in starts:
        inside = [p for p in range(start, start + kernel_size) if 0 <= p < size]
        if count_include_pad:
            # padding counts, the overhang past the right padding does not
            divisor = sum(1 for p in range(start, start + kernel_size) if p < size + padding)
        else:
            divisor = len(inside)
        members.append(inside)
        divisors.append(divisor)
    for n in range(batch):
        for c in range(channels):
            for o in range(len(starts)):
                total = 0.0
                for p in members[o]:
                    total += x[n, c, p]
                out[n, c, o] = total / divisors[o]
    return out, {"members": members, "divisors": divisors, "shape": x.shape, "dtype": x.dtype}


def avg_pool1d_backward_loops(dout, cache) -> tuple[np.ndarray]:
    grad = np.zeros(cache["shape"], dtype=cache["dtype"])
    batch, channels, _ = cache["shape"]
    for n in range(batch):
        for c in range(channels):
            for o, inside in enumerate(cache["members"]):
                for p in inside:
                    grad[n, c, p] += dout[n, c, o] / cache["divisors"][o]
    return (grad,)
