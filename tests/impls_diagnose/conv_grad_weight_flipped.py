"""conv2d whose weight gradient comes back rotated by 180 degrees."""
from refcheck.layers import conv2d_backward as _backward
from refcheck.layers import conv2d_forward


def conv2d_backward(dout, cache):
    grad_input, grad_weight, grad_bias = _backward(dout, cache)
    return grad_input, grad_weight[..., ::-1, ::-1].copy(), grad_bias


__all__ = ["conv2d_forward", "conv2d_backward"]
