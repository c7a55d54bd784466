"""conv2d's gradients written as the derivation states them (slow but plain).

grad_weight is the cross-correlation of the padded input with dout used as the kernel
(:func:`conv2d_weight_grad_by_cross_correlation`); grad_input is the full convolution of the
stride-dilated dout with the kernel (:func:`conv2d_input_grad_by_full_convolution`). The layer's
backward (:func:`refcheck.layers.conv.conv2d_backward`) computes the same sums as matrix products;
these forms are kept as its independent statement, and tests compare the two.
"""
from __future__ import annotations

import numpy as np

from ._conv_parts import (
    Pair,
    SidePadding,
    _extent,
    cross_correlate,
    dilate,
    pad,
    rotate_180,
)

__all__ = [
    "conv2d_input_grad_by_full_convolution",
    "conv2d_weight_grad_by_cross_correlation",
]


def _transposed_rotated_kernel(weight: np.ndarray, groups: int) -> np.ndarray:
    """The kernel of the full convolution: (C, F // groups, kh, kw), in/out swapped per group,
    rotated by 180 degrees."""
    filters, channels_per_group, kh, kw = weight.shape
    kernel = weight.reshape(groups, filters // groups, channels_per_group, kh, kw)
    kernel = kernel.transpose(0, 2, 1, 3, 4).reshape(
        groups * channels_per_group, filters // groups, kh, kw
    )
    return rotate_180(kernel)


def conv2d_weight_grad_by_cross_correlation(
    x_padded: np.ndarray, dout: np.ndarray, *, kernel_size: Pair, stride: Pair, dilation: Pair,
    groups: int,
) -> np.ndarray:
    """grad_weight written as the cross-correlation it is (the derivation; slow but plain).

    ``grad_weight[f, c, i, j] = sum_{n, oh, ow} dout[n, f, oh, ow] * x_pad[n, g*Cg + c, oh*sh + i*dh,
    ow*sw + j*dw]``: a cross-correlation of the padded input with dout used as the kernel, summed
    over the batch. So the batch plays the channel role and the channel the batch role; dout's taps
    are sh apart (the forward stride becomes the kernel dilation) and neighbouring outputs i, i+1
    are dh apart (the forward dilation becomes the stride). Groups carry over.

    Parameters
    ----------
    x_padded : ndarray of shape (N, C, Hp, Wp), the forward input after padding
    dout : ndarray of shape (N, F, OH, OW)
    kernel_size, stride, dilation : (h, w) of the forward pass
    groups : int

    Returns
    -------
    ndarray of shape (F, C // groups, kh, kw)
    """
    batch, channels = x_padded.shape[:2]
    channels_per_group = channels // groups
    kh, kw = kernel_size
    x_as_batch = x_padded.reshape(batch, groups, channels_per_group, *x_padded.shape[2:])
    x_as_batch = x_as_batch.transpose(2, 1, 0, 3, 4).reshape(
        channels_per_group, groups * batch, *x_padded.shape[2:]
    )
    dout_as_kernel = dout.transpose(1, 0, 2, 3)  # (F, N, OH, OW)
    grad_weight = cross_correlate(
        x_as_batch, dout_as_kernel, stride=dilation, dilation=stride, groups=groups
    )  # (Cg, F, >= kh, >= kw)
    # Offsets i >= kh are not kernel taps; they appear when the padded input runs past the last
    # window the strided forward used. Drop them.
    return np.ascontiguousarray(grad_weight[:, :, :kh, :kw].transpose(1, 0, 2, 3))


def conv2d_input_grad_by_full_convolution(
    dout: np.ndarray, weight: np.ndarray, *, input_shape: tuple[int, ...], padding: SidePadding,
    stride: Pair, dilation: Pair, groups: int,
) -> np.ndarray:
    """grad_input written as the full convolution it is (the derivation; slow but plain).

    x_pad[y] feeds out[oh] through tap i whenever y = oh*sh + i*dh, so
    ``grad_x_pad[y] = sum_i dout_dilated[y - i*dh] * weight[i]`` where
    ``dout_dilated = dilate(dout, stride)`` holds dout[oh] at row oh*sh: a FULL convolution of the
    stride-dilated dout with the kernel. As a cross-correlation: pad dout_dilated by the kernel
    extent - 1 on every side and slide the 180-degree-rotated kernel over it (same dilation,
    stride 1), with in/out channels swapped per group; then crop the forward padding.

    Parameters
    ----------
    dout : ndarray of shape (N, F, OH, OW)
    weight : ndarray of shape (F, C // groups, kh, kw)
    input_shape : (N, C, H, W) of the forward input
    padding : ((top, bottom), (left, right)) of the forward pass (see :func:`resolve_padding`)
    stride, dilation : (h, w)
    groups : int

    Returns
    -------
    ndarray of shape (N, C, H, W)
    """
    batch, channels, height, width = input_shape
    kh, kw = weight.shape[2:]
    dout_dilated = dilate(dout, stride)
    extent_h, extent_w = _extent(kh, dilation[0]), _extent(kw, dilation[1])
    dout_full = pad(dout_dilated, ((extent_h - 1, extent_h - 1), (extent_w - 1, extent_w - 1)))
    # Per group the kernel maps Cg inputs to Fg outputs; backwards it maps Fg to Cg: swap the axes.
    grad_reached = cross_correlate(
        dout_full, _transposed_rotated_kernel(weight, groups), stride=(1, 1), dilation=dilation,
        groups=groups,
    )  # (N, C, sh*(OH-1) + extent_h, sw*(OW-1) + extent_w)
    # Rows/cols at the bottom/right that no forward window reached get zero gradient; then the
    # forward padding (possibly asymmetric, for 'same') is cropped away.
    (top, _), (left, _) = padding
    grad_input = np.zeros((batch, channels, height, width), dtype=dout.dtype)
    reached_h = max(0, min(grad_reached.shape[2] - top, height))
    reached_w = max(0, min(grad_reached.shape[3] - left, width))
    grad_input[:, :, :reached_h, :reached_w] = grad_reached[
        :, :, top : top + reached_h, left : left + reached_w
    ]
    return grad_input
