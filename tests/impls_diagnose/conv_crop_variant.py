"""conv2d computed on an explicitly padded input; the backward crops the padding with a slice
chosen by the fixtures importing it (the built-in layer does the arithmetic)."""
import numpy as np

from refcheck.layers import conv2d_backward as _backward
from refcheck.layers import conv2d_forward as _forward


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    pad_h, pad_w = padding
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    out, cache = _forward(x_padded, weight, bias, stride=stride, padding=(0, 0), dilation=dilation, groups=groups)
    return out, (cache, pad_h, pad_w)


def backward_with_crop(dout, cache, crop):
    inner, pad_h, pad_w = cache
    grad_padded, grad_weight, grad_bias = _backward(dout, inner)
    return crop(grad_padded, pad_h, pad_w), grad_weight, grad_bias
