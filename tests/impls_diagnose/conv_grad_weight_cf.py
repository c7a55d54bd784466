"""conv2d whose weight gradient is returned as (C, F, kh, kw) instead of (F, C, kh, kw)."""
from refcheck.layers import conv2d_backward as _backward
from refcheck.layers import conv2d_forward


def conv2d_backward(dout, cache):
    grad_input, grad_weight, grad_bias = _backward(dout, cache)
    return grad_input, grad_weight.transpose(1, 0, 2, 3), grad_bias


__all__ = ["conv2d_forward", "conv2d_backward"]
