"""Two-dimensional transposed convolution (torch.nn.functional.conv_transpose2d) in numpy.

The identity this layer is built on
-----------------------------------
A transposed convolution is the input gradient of a convolution. For any ``x``, ``W`` and
conv2d hyperparameters (stride ``s``, padding ``p``, dilation ``d``, groups ``g``)::

    y  = conv2d(x, W, stride=s, padding=p, dilation=d, groups=g)     # x: (N, C, H, W)
    dx = conv_transpose2d(dy, W, stride=s, padding=p, dilation=d, groups=g,
                          output_padding=op)                        # exactly d loss / d x

with the SAME weight tensor ``W`` of shape (F, C // g, kh, kw): torch's conv_transpose2d reads
its weight as (C_in, C_out // groups, kh, kw), which is conv2d's (F, C // g) read backwards.
``op = H + 2p - d*(kh-1) - 1 - (OH-1)*s`` (per axis, ``0 <= op < s``) restores the rows a
strided conv2d never reached. Hence the forward pass here *is* conv2d's input gradient:

    out[n, g*Cog + co, ih*s + i*d - p, iw*s + j*d - p]
        += x[n, ci, ih, iw] * weight[ci, co, i, j]        for ci in group g, summed, + bias[co]

i.e. every input pixel stamps the kernel, scaled by its value, onto an ``s``-spaced grid of the
output (a full convolution of the stride-dilated input with the kernel; viewed as a
cross-correlation, the kernel is rotated by 180 degrees and its channel axes swapped). Its
gradients are then the other two conv2d passes: ``grad_input`` is conv2d's forward of ``dout``
(a cross-correlation, no flip) and ``grad_weight`` is conv2d's weight gradient with the roles of
input and upstream gradient exchanged.

Output size per axis: ``(H - 1)*s - 2p + d*(k - 1) + output_padding + 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv_core import (
    as_tuple,
    conv_input_gradient,
    conv_weight_gradient,
    cross_correlate_nd,
    pad_nd,
)

__all__ = [
    "ConvTranspose2dCache",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward",
    "conv_transpose2d_output_size",
]

Pair = tuple[int, int]


def conv_transpose2d_output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int
) -> int:
    """``(size - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1``."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


@dataclass(frozen=True)
class ConvTranspose2dCache:
    """What conv_transpose2d_backward needs from the forward pass."""

    x: np.ndarray  # (N, C_in, H, W)
    weight: np.ndarray  # (C_in, C_out // groups, kh, kw), at the input's dtype
    has_bias: bool
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int


def conv_transpose2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    output_padding: int | Pair = 0,
    groups: int = 1,
    dilation: int | Pair = 1,
) -> tuple[np.ndarray, ConvTranspose2dCache]:
    """Forward pass of torch.nn.functional.conv_transpose2d (the input gradient of conv2d).

    Parameters
    ----------
    x : ndarray of shape (N, C_in, H, W)
    weight : ndarray of shape (C_in, C_out // groups, kh, kw), torch's layout (conv2d's
        (F, C // groups) with F = C_in)
    bias : ndarray of shape (C_out,) or None
    stride, dilation : (h, w) or int, >= 1
    padding : (h, w) or int, >= 0 (no strings): rows/columns cropped from each side of the full
        result, i.e. the padding of the conv2d this transposes
    output_padding : (h, w) or int, >= 0, smaller than the stride or the dilation on each axis
        (torch's rule); extra rows/columns at the bottom/right
    groups : int, dividing C_in and C_out

    Returns
    -------
    out : ndarray of shape (N, C_out, OH, OW), dtype of ``x``,
        ``OH = (H-1)*sh - 2*ph + dh*(kh-1) + oph + 1`` (must be >= 1), likewise OW, with
        ``out[n, g*Cog + co, ih*sh + i*dh - ph, iw*sw + j*dw - pw] += x[n, ci, ih, iw]
        * weight[ci, co, i, j]`` over ``ci`` of group ``g``, plus ``bias[co]``
    cache : ConvTranspose2dCache for :func:`conv_transpose2d_backward`
    """
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"expected 4-d input and weight, got {x.shape} and {weight.shape}")
    stride, padding = as_tuple(stride, 2, "stride"), as_tuple(padding, 2, "padding")
    dilation = as_tuple(dilation, 2, "dilation")
    output_padding = as_tuple(output_padding, 2, "output_padding")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0 or min(output_padding) < 0:
        raise ValueError(
            f"need stride, dilation >= 1 and padding, output_padding >= 0, got stride {stride}, "
            f"dilation {dilation}, padding {padding}, output_padding {output_padding}"
        )
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"output_padding {output_padding} must be smaller than either stride {stride} or "
            f"dilation {dilation} on each axis"
        )
    channels_in = x.shape[1]
    if groups < 1 or channels_in % groups or weight.shape[0] != channels_in:
        raise ValueError(
            f"weight shape {weight.shape} and groups={groups} do not fit {channels_in} input "
            "channels (weight is (C_in, C_out // groups, kh, kw))"
        )
    kernel_size = weight.shape[2:]
    out_size = tuple(
        conv_transpose2d_output_size(size, k, s, p, d, op)
        for size, k, s, p, d, op in zip(x.shape[2:], kernel_size, stride, padding, dilation,
                                        output_padding)
    )
    if min(out_size) < 1:
        raise ValueError(f"input of spatial size {x.shape[2:]} gives output size {out_size}")
    dtype = x.dtype
    weight = weight.astype(dtype, copy=False)
    # conv2d's input gradient with x in the role of dout: the identity in the module docstring.
    out = conv_input_gradient(
        x, weight, input_size=out_size, padding=tuple((p, p) for p in padding),
        stride=stride, dilation=dilation, groups=groups,
    )
    if bias is not None:
        out += bias.astype(dtype, copy=False)[None, :, None, None]
    cache = ConvTranspose2dCache(x, weight, bias is not None, stride, padding, dilation, groups)
    return out, cache


def conv_transpose2d_backward(
    dout: np.ndarray, cache: ConvTranspose2dCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Backward pass of torch.nn.functional.conv_transpose2d.

    Parameters
    ----------
    dout : ndarray of shape (N, C_out, OH, OW)
    cache : ConvTranspose2dCache from :func:`conv_transpose2d_forward`

    Returns
    -------
    grad_input : ndarray of shape (N, C_in, H, W), conv2d(dout, weight) with the same stride,
        padding, dilation and groups (windows past H, W -- reached only through output_padding
        -- are not used)
    grad_weight : ndarray of shape (C_in, C_out // groups, kh, kw),
        ``sum_{n, ih, iw} x[n, ci, ih, iw] * dout_pad[n, g*Cog + co, ih*sh + i*dh, iw*sw + j*dw]``
    grad_bias : ndarray of shape (C_out,), or None when forward had no bias
    """
    x, weight = cache.x, cache.weight
    dout = dout.astype(x.dtype, copy=False)
    grad_bias = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    dout_padded = pad_nd(dout, tuple((p, p) for p in cache.padding))
    # Reading dout back through the windows forward wrote: the conv2d forward pass.
    grad_input = cross_correlate_nd(
        dout_padded, weight, stride=cache.stride, dilation=cache.dilation, groups=cache.groups,
        out_size=x.shape[2:],
    )
    # conv2d's weight gradient with x as its upstream gradient and dout as its input.
    grad_weight = conv_weight_gradient(
        dout_padded, x, weight.shape[2:],
        stride=cache.stride, dilation=cache.dilation, groups=cache.groups,
    )
    return grad_input, grad_weight, grad_bias
