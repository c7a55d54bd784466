"""conv2d that returns its output channels-last, (N, H, W, F)."""
from refcheck.layers import conv2d_backward
from refcheck.layers import conv2d_forward as _forward


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    out, cache = _forward(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return out.transpose(0, 2, 3, 1), cache


__all__ = ["conv2d_forward", "conv2d_backward"]
