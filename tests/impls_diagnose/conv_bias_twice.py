"""conv2d that adds the bias twice: a mistake outside the known list (no diagnosis should claim it)."""
from refcheck.layers import conv2d_backward
from refcheck.layers import conv2d_forward as _forward


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    out, cache = _forward(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (out if bias is None else out + bias[None, :, None, None]), cache


__all__ = ["conv2d_forward", "conv2d_backward"]
