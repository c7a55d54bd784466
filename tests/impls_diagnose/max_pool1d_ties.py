"""max_pool1d whose backward sends a window's gradient to every element equal to its maximum."""
from pool1d_variant import max_pool1d_backward_variant

from refcheck.layers import max_pool1d_forward as _forward


def max_pool1d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    out, _ = _forward(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                      ceil_mode=ceil_mode)
    return out, (x, out, kernel_size, stride, padding, dilation)


def max_pool1d_backward(dout, cache):
    return max_pool1d_backward_variant(dout, *cache, ties_to_all=True)


__all__ = ["max_pool1d_forward", "max_pool1d_backward"]
