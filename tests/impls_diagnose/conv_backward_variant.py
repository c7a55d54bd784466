"""The built-in conv2d backward with two switches for planted mistakes (imported by fixtures).

dilate_dout=False: the stride is ignored in the backward (dout is used undilated).
crop_at_origin=True: grad_input is cut from the padded gradient at (0, 0), not after the padding.
"""
import numpy as np

from refcheck.layers.conv import cross_correlate, dilate, pad, rotate_180


def conv2d_backward_variant(dout, cache, *, dilate_dout=True, crop_at_origin=False):
    x_padded, weight, groups = cache.x_padded, cache.weight, cache.groups
    stride, dilation = cache.stride, cache.dilation
    batch, channels, height, width = cache.input_shape
    filters, channels_per_group, kh, kw = weight.shape
    grad_bias = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    x_as_batch = x_padded.reshape(batch, groups, channels_per_group, *x_padded.shape[2:])
    x_as_batch = x_as_batch.transpose(2, 1, 0, 3, 4).reshape(channels_per_group, groups * batch, *x_padded.shape[2:])
    taps_apart = stride if dilate_dout else (1, 1)
    grad_weight = cross_correlate(x_as_batch, dout.transpose(1, 0, 2, 3), stride=dilation, dilation=taps_apart,
                                  groups=groups)
    grad_weight = grad_weight[:, :, :kh, :kw].transpose(1, 0, 2, 3)
    dout_dilated = dilate(dout, stride) if dilate_dout else dout
    extent_h, extent_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    dout_full = pad(dout_dilated, ((extent_h - 1, extent_h - 1), (extent_w - 1, extent_w - 1)))
    kernel = weight.reshape(groups, filters // groups, channels_per_group, kh, kw)
    kernel = kernel.transpose(0, 2, 1, 3, 4).reshape(channels, filters // groups, kh, kw)
    grad_reached = cross_correlate(dout_full, rotate_180(kernel), stride=(1, 1), dilation=dilation, groups=groups)
    (top, _), (left, _) = cache.padding
    if crop_at_origin:
        top, left = 0, 0
    grad_input = np.zeros((batch, channels, height, width), dtype=x_padded.dtype)
    reached_h = max(0, min(grad_reached.shape[2] - top, height))
    reached_w = max(0, min(grad_reached.shape[3] - left, width))
    grad_input[:, :, :reached_h, :reached_w] = grad_reached[:, :, top:top + reached_h, left:left + reached_w]
    return grad_input, grad_weight, grad_bias
