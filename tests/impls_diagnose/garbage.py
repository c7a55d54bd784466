"""Layers that return random numbers of the right shape and dtype (no known mistake explains them)."""
import numpy as np

_rng = np.random.default_rng(7)


def _noise(like):
    return _rng.standard_normal(like.shape).astype(like.dtype)


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    from refcheck.layers import conv2d_forward as shaped

    out, _ = shaped(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _noise(out), (x, weight, bias)


def conv2d_backward(dout, cache):
    x, weight, bias = cache
    return _noise(x), _noise(weight), None if bias is None else _noise(bias)


def linear_forward(x, weight, bias):
    return _noise(x @ weight.T), (x, weight, bias)


def linear_backward(dout, cache):
    x, weight, bias = cache
    return _noise(x), _noise(weight), None if bias is None else _noise(bias)


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    from refcheck.layers import max_pool2d_forward as shaped

    out, _ = shaped(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                    ceil_mode=ceil_mode)
    return _noise(out), x


def max_pool2d_backward(dout, x):
    return _noise(x)


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    from refcheck.layers import avg_pool2d_forward as shaped

    out, _ = shaped(x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                    count_include_pad=count_include_pad, divisor_override=divisor_override)
    return _noise(out), x


def avg_pool2d_backward(dout, x):
    return _noise(x)


def mse_loss_forward(input, target, *, reduction):
    return np.asarray(_rng.standard_normal(), dtype=input.dtype), input


def mse_loss_backward(dout, input):
    return _noise(input)


def cross_entropy_forward(input, target, *, reduction):
    return np.asarray(_rng.standard_normal(), dtype=input.dtype), input


def cross_entropy_backward(dout, input):
    return _noise(input)
