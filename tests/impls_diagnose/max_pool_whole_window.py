"""max_pool2d whose backward sends each window's gradient to every element of the window (an
average pool's backward without the division), not to its maximum: wrong by the gradient's whole
size, which no float32 rounding explains, even where torch's own float32 result is far off."""
import numpy as np

from refcheck.layers import max_pool2d_forward as _forward


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    out, _ = _forward(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                          ceil_mode=ceil_mode)
    return out, (kernel_size, stride, x.shape, out.shape)


def max_pool2d_backward(dout, cache):
    (kh, kw), (sh, sw), shape, (_, _, out_h, out_w) = cache
    grad = np.zeros(shape, dtype=dout.dtype)
    for oh in range(out_h):
        for ow in range(out_w):
            grad[:, :, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw] += dout[:, :, oh:oh + 1, ow:ow + 1]
    return grad
