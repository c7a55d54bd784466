"""max_pool2d that ignores ceil_mode (always rounds the window count down); its backward uses the
part of dout that matches its own output."""
from refcheck.layers import max_pool2d_backward as _backward
from refcheck.layers import max_pool2d_forward as _forward


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    return _forward(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=False)


def max_pool2d_backward(dout, cache):
    out_h, out_w = cache["best_offset"].shape[2:]
    return _backward(dout[:, :, :out_h, :out_w], cache)
