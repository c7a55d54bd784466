"""conv2d as a true convolution: the kernel is rotated by 180 degrees in forward (gradients consistent)."""
from refcheck.layers import conv2d_backward as _backward
from refcheck.layers import conv2d_forward as _forward


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    return _forward(x, weight[..., ::-1, ::-1], bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)


def conv2d_backward(dout, cache):
    grad_input, grad_rotated, grad_bias = _backward(dout, cache)
    return grad_input, grad_rotated[..., ::-1, ::-1], grad_bias
