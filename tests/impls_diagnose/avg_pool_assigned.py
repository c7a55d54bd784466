"""avg_pool2d whose backward assigns each window's share (dx[window] = dout / divisor) instead of adding it."""
import numpy as np

from refcheck.layers import avg_pool2d_forward as _forward


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    out, cache = _forward(x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                          count_include_pad=count_include_pad, divisor_override=divisor_override)
    return out, (cache, kernel_size, stride, padding, x.shape)


def avg_pool2d_backward(dout, cache):
    inner, (kh, kw), (sh, sw), (ph, pw), shape = cache
    share = dout / inner["divisor"]
    height, width = shape[2:]
    grad = np.zeros(shape, dtype=dout.dtype)
    for oh in range(dout.shape[2]):
        for ow in range(dout.shape[3]):
            top, left = max(oh * sh - ph, 0), max(ow * sw - pw, 0)
            bottom, right = min(oh * sh - ph + kh, height), min(ow * sw - pw + kw, width)
            grad[:, :, top:bottom, left:right] = share[:, :, oh, ow, None, None]
    return grad
