"""avg_pool2d that ignores count_include_pad (always counts the padding in the divisor)."""
from refcheck.layers import avg_pool2d_backward
from refcheck.layers import avg_pool2d_forward as _forward


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    return _forward(x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                    count_include_pad=True, divisor_override=divisor_override)


__all__ = ["avg_pool2d_forward", "avg_pool2d_backward"]
