"""conv2d whose backward loops over samples and output positions writing '=' where '+=' belongs:
grad_bias keeps the last sample's last position, grad_weight the last sample's gradient."""
import numpy as np

from refcheck.layers import conv2d_backward as _backward
from refcheck.layers import conv2d_forward as _forward


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    hparams = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out, cache = _forward(x, weight, bias, **hparams)
    return out, (cache, x, weight, bias, hparams)


def conv2d_backward(dout, cache):
    cache, x, weight, bias, hparams = cache
    grad_input, _, _ = _backward(dout, cache)
    n, f, oh, ow = dout.shape
    grad_weight = np.zeros_like(weight)
    for sample in range(n):
        _, one = _forward(x[sample:sample + 1], weight, bias, **hparams)
        grad_weight = _backward(dout[sample:sample + 1], one)[1]  # '=' where '+=' belongs
    grad_bias = None
    if bias is not None:
        grad_bias = np.zeros_like(bias)
        for sample in range(n):
            for i in range(oh):
                for j in range(ow):
                    for channel in range(f):
                        grad_bias[channel] = dout[sample, channel, i, j]  # '=' where '+=' belongs
    return grad_input, grad_weight, grad_bias
