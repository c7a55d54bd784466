"""avg_pool1d that ignores count_include_pad (always counts the padding in the divisor)."""
from refcheck.layers import avg_pool1d_backward
from refcheck.layers import avg_pool1d_forward as _forward


def avg_pool1d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    return _forward(x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                    count_include_pad=True)


__all__ = ["avg_pool1d_forward", "avg_pool1d_backward"]
