"""A correct conv2d (forward and backward) whose gradient steps can be switched to known mistakes.

Built from refcheck's public convolution pieces (``pad``, ``dilate``, ``rotate_180``,
``cross_correlate``, ``resolve_padding``); with every switch at its default the pair reproduces
``torch.nn.functional.conv2d`` exactly. The fixture implementations in this folder each turn one
switch, so a test can show that refcheck blames exactly the tensor and the configurations the
mistake affects. This module itself defines no ``conv2d_forward``: on its own it implements nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from refcheck.layers.conv import cross_correlate, dilate, pad, resolve_padding, rotate_180

__all__ = ["make_conv2d"]

Pair = tuple[int, int]
Forward = Callable[..., tuple[np.ndarray, dict[str, Any]]]
Backward = Callable[[np.ndarray, dict[str, Any]], tuple[np.ndarray, np.ndarray, np.ndarray | None]]


def make_conv2d(*, dilate_upstream: bool = True, flip_kernel: bool = True, sum_bias_over_batch: bool = True,
                crop_weight_grad: bool = True, true_convolution: bool = False) -> tuple[Forward, Backward]:
    """A ``(conv2d_forward, conv2d_backward)`` pair in the implementation contract.

    Parameters
    ----------
    dilate_upstream : bool
        False: grad_input skips spreading dout to every stride-th row/column (wrong when stride > 1).
    flip_kernel : bool
        False: grad_input correlates with the kernel instead of the kernel rotated by 180 degrees
        (wrong for kernels larger than 1x1).
    sum_bias_over_batch : bool
        False: grad_bias takes only the first batch item (wrong when N > 1).
    crop_weight_grad : bool
        False: grad_weight keeps the offsets past the kernel that appear when the padded input is
        longer than the last strided window needs, so it has shape (F, C/groups, >= kh, >= kw).
    true_convolution : bool
        True: forward is a true convolution (kernel rotated by 180 degrees) with the matching
        backward: self-consistent, but not torch's cross-correlation.

    Returns
    -------
    conv2d_forward(x (N, C, H, W), weight (F, C/groups, kh, kw), bias (F,) | None, *, stride, padding,
    dilation, groups) -> (out (N, F, OH, OW), cache) and conv2d_backward(dout, cache) ->
    (grad_input, grad_weight, grad_bias), with OH = (H + pad_total - dh*(kh-1) - 1) // sh + 1.
    """

    def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, *, stride: Pair,
                       padding: str | Pair, dilation: Pair, groups: int) -> tuple[np.ndarray, dict[str, Any]]:
        sides = resolve_padding(padding, weight.shape[2:], stride, dilation)
        kernel = rotate_180(weight) if true_convolution else weight
        x_padded = pad(x, sides)
        out = cross_correlate(x_padded, kernel, stride=stride, dilation=dilation, groups=groups)
        if bias is not None:
            out = out + bias[None, :, None, None]
        cache = {"x_padded": x_padded, "kernel": kernel, "has_bias": bias is not None, "input_shape": x.shape,
                 "sides": sides, "stride": stride, "dilation": dilation, "groups": groups}
        return out, cache

    def conv2d_backward(dout: np.ndarray, cache: dict[str, Any]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        x_padded, kernel, groups = cache["x_padded"], cache["kernel"], cache["groups"]
        stride, dilation = cache["stride"], cache["dilation"]
        (top, _), (left, _) = cache["sides"]
        batch, channels, height, width = cache["input_shape"]
        filters, channels_per_group, kh, kw = kernel.shape

        grad_bias = None
        if cache["has_bias"]:
            grad_bias = dout.sum(axis=(0, 2, 3)) if sum_bias_over_batch else dout[0].sum(axis=(1, 2))

        # grad_weight: x_pad correlated with dout as the kernel (stride and dilation swap roles).
        x_as_batch = x_padded.reshape(batch, groups, channels_per_group, *x_padded.shape[2:])
        x_as_batch = x_as_batch.transpose(2, 1, 0, 3, 4).reshape(channels_per_group, groups * batch,
                                                                 *x_padded.shape[2:])
        grad_kernel = cross_correlate(x_as_batch, dout.transpose(1, 0, 2, 3), stride=dilation, dilation=stride,
                                      groups=groups)
        if crop_weight_grad:
            grad_kernel = grad_kernel[:, :, :kh, :kw]
        grad_kernel = grad_kernel.transpose(1, 0, 2, 3)
        grad_weight = np.ascontiguousarray(rotate_180(grad_kernel) if true_convolution else grad_kernel)

        # grad_input: full correlation of the stride-dilated dout with the rotated, transposed kernel.
        upstream = dilate(dout, stride) if dilate_upstream else dout
        extent_h, extent_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
        upstream = pad(upstream, ((extent_h - 1, extent_h - 1), (extent_w - 1, extent_w - 1)))
        transposed = kernel.reshape(groups, filters // groups, channels_per_group, kh, kw)
        transposed = transposed.transpose(0, 2, 1, 3, 4).reshape(channels, filters // groups, kh, kw)
        if flip_kernel:
            transposed = rotate_180(transposed)
        reached = cross_correlate(upstream, transposed, stride=(1, 1), dilation=dilation, groups=groups)
        # Positions no forward window reached keep a zero gradient; then the padding is cropped.
        grad_padded = np.zeros((batch, channels) + x_padded.shape[2:], dtype=x_padded.dtype)
        rows, cols = min(reached.shape[2], grad_padded.shape[2]), min(reached.shape[3], grad_padded.shape[3])
        grad_padded[:, :, :rows, :cols] = reached[:, :, :rows, :cols]
        grad_input = np.ascontiguousarray(grad_padded[:, :, top:top + height, left:left + width])
        return grad_input, grad_weight, grad_bias

    return conv2d_forward, conv2d_backward
