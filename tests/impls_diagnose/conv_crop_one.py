"""conv2d whose backward crops the padding with a hard-coded dx_padded[:, :, 1:-1, 1:-1]."""
from conv_crop_variant import backward_with_crop, conv2d_forward


def conv2d_backward(dout, cache):
    return backward_with_crop(dout, cache, lambda grad, pad_h, pad_w: grad[:, :, 1:-1, 1:-1])


__all__ = ["conv2d_forward", "conv2d_backward"]
