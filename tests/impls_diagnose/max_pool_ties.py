"""max_pool2d whose backward sends a window's gradient to every element equal to its maximum."""
import numpy as np

from refcheck.layers import max_pool2d_forward as _forward


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    out, cache = _forward(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                          ceil_mode=ceil_mode)
    return out, (cache, x, out)


def max_pool2d_backward(dout, cache):
    inner, x, out = cache
    rows, cols = inner["rows"], inner["cols"]
    buffer = np.full(x.shape[:-2] + (rows.padded, cols.padded), -np.inf, dtype=x.dtype)
    buffer[..., rows.padding:rows.padding + rows.size, cols.padding:cols.padding + cols.size] = x
    grad = np.zeros_like(buffer)
    for row in rows.slices:
        for col in cols.slices:
            grad[..., row, col] += np.where(buffer[..., row, col] == out, dout, 0)
    return grad[..., rows.padding:rows.padding + rows.size, cols.padding:cols.padding + cols.size].copy()
