"""linear whose weight gradient is returned as (in_features, out_features)."""
from refcheck.layers import linear_backward as _backward
from refcheck.layers import linear_forward


def linear_backward(dout, cache):
    grad_input, grad_weight, grad_bias = _backward(dout, cache)
    return grad_input, grad_weight.T, grad_bias


__all__ = ["linear_forward", "linear_backward"]
