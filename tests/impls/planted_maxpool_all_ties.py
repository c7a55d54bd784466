"""max_pool2d whose backward sends the gradient to every element equal to the window's maximum.

torch sends it to the first maximum only (row-major order). The two agree unless a window holds
a tie for its maximum, so only inputs with ties (the "ties" kind) show the mistake.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from refcheck.layers import max_pool2d_forward as _first_max_forward

__all__ = ["max_pool2d_backward", "max_pool2d_forward"]

Pair = tuple[int, int]


def max_pool2d_forward(x: np.ndarray, *, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair,
                       ceil_mode: bool) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Max pooling of x (N, C, H, W) -> (N, C, OH, OW) (torch's output size); caches x and the output."""
    out, _ = _first_max_forward(x, kernel_size=kernel_size, stride=stride, padding=padding,
                                dilation=dilation, ceil_mode=ceil_mode)
    return out, (x, out, kernel_size, stride, padding, dilation)


def max_pool2d_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> np.ndarray:
    """grad_input (N, C, H, W): each window's dout added to every element equal to its maximum."""
    x, out, (kh, kw), (sh, sw), (ph, pw), (dh, dw) = cache
    height, width = x.shape[-2:]
    out_h, out_w = out.shape[-2:]
    # -inf padding never equals a finite maximum; the buffer also covers ceil_mode's overhang.
    rows = max(height + 2 * ph, (out_h - 1) * sh + dh * (kh - 1) + 1)
    cols = max(width + 2 * pw, (out_w - 1) * sw + dw * (kw - 1) + 1)
    buffer = np.full(x.shape[:-2] + (rows, cols), -np.inf, dtype=x.dtype)
    buffer[..., ph:ph + height, pw:pw + width] = x
    grad = np.zeros_like(buffer)
    for i in range(kh):
        for j in range(kw):
            window_rows = slice(i * dh, i * dh + (out_h - 1) * sh + 1, sh)
            window_cols = slice(j * dw, j * dw + (out_w - 1) * sw + 1, sw)
            at_max = buffer[..., window_rows, window_cols] == out
            grad[..., window_rows, window_cols] += np.where(at_max, dout, np.zeros((), dtype=x.dtype))
    return np.ascontiguousarray(grad[..., ph:ph + height, pw:pw + width])
