"""max_pool2d in the CS231n manner: each window's running maximum starts at -100000.

Right for every window that holds a value above -1e5; a window whose values all lie below it
returns -100000 and sends its gradient nowhere. Ties go to the first maximum, as in torch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["max_pool2d_backward", "max_pool2d_forward"]

Pair = tuple[int, int]


def _output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def max_pool2d_forward(x: np.ndarray, *, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair,
                       ceil_mode: bool) -> tuple[np.ndarray, tuple[Any, ...]]:
    """x (N, C, H, W) -> (N, C, OH, OW); the cache holds the position of each window's maximum."""
    n, c, h, w = x.shape
    oh = _output_size(h, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = _output_size(w, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    where = np.full((n, c, oh, ow, 2), -1, dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    best = -100000.0
                    for ki in range(kernel_size[0]):
                        for kj in range(kernel_size[1]):
                            r = i * stride[0] - padding[0] + ki * dilation[0]
                            s = j * stride[1] - padding[1] + kj * dilation[1]
                            if 0 <= r < h and 0 <= s < w and x[b, ch, r, s] > best:
                                best = x[b, ch, r, s]
                                where[b, ch, i, j] = (r, s)
                    out[b, ch, i, j] = best
    return out, (x.shape, where)


def max_pool2d_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> np.ndarray:
    """grad_input: each window's upstream gradient added at its maximum."""
    shape, where = cache
    grad = np.zeros(shape, dtype=dout.dtype)
    for index in np.ndindex(dout.shape):
        r, s = where[index]
        if r >= 0:
            grad[index[0], index[1], r, s] += dout[index]
    return grad
