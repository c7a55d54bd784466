"""max_pool2d that zero-pads the input (np.pad) and pools the padded array without padding."""
import numpy as np

from refcheck.layers import max_pool2d_backward as _backward
from refcheck.layers import max_pool2d_forward as _forward


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    (ph, pw) = padding
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out, cache = _forward(padded, kernel_size=kernel_size, stride=stride, padding=(0, 0), dilation=dilation,
                          ceil_mode=ceil_mode)
    return out, (cache, padding, x.shape)


def max_pool2d_backward(dout, cache):
    inner, (ph, pw), shape = cache
    grad = _backward(dout, inner)
    return grad[..., ph:ph + shape[2], pw:pw + shape[3]].copy()
