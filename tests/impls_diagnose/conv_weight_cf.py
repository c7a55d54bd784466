"""conv2d that reads the weight as (C, F, kh, kw): it uses weight.transpose(1, 0, 2, 3) (square
weights only); the gradient it returns is taken with respect to what it used."""
from refcheck.layers import conv2d_backward
from refcheck.layers import conv2d_forward as _forward


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    return _forward(x, weight.transpose(1, 0, 2, 3), bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)


__all__ = ["conv2d_forward", "conv2d_backward"]
