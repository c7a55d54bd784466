"""avg_pool1d whose backward assigns each window's share to its elements (overlaps overwrite)."""
from pool1d_variant import avg_pool1d_backward_assigned

from refcheck.layers import avg_pool1d_forward as _forward


def avg_pool1d_forward(x, *, kernel_size, stride, padding, count_include_pad):
    out, _ = _forward(x, kernel_size=kernel_size, stride=stride, padding=padding, count_include_pad=count_include_pad)
    return out, (x, kernel_size, stride, padding, count_include_pad)


def avg_pool1d_backward(dout, cache):
    return avg_pool1d_backward_assigned(dout, *cache)


__all__ = ["avg_pool1d_forward", "avg_pool1d_backward"]
