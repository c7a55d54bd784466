"""Two-dimensional convolution (torch.nn.functional.conv2d semantics) in numpy.

torch's conv2d is a cross-correlation: the kernel slides over the input without being flipped,

    out[n, f, oh, ow] = bias[f] + sum_{c, i, j} x_pad[n, g*Cg + c, oh*sh + i*dh, ow*sw + j*dw]
                                               * weight[f, c, i, j]

where g = f // Fg is the group of output channel f, Cg = C / groups and Fg = F / groups.
Its three gradients are again cross-correlations, built from the same reusable pieces
(:func:`pad`, :func:`dilate`, :func:`cross_correlate`):

* grad_bias   = sum of dout over batch and space;
* grad_weight = cross-correlation of the padded input with dout used as the kernel
  (the forward stride becomes the kernel dilation and the forward dilation the stride);
* grad_input  = full convolution of the stride-dilated dout with the kernel, i.e. a
  cross-correlation of the zero-padded, dilated dout with the kernel rotated by 180 degrees
  (in/out channels swapped per group), cropped by the forward padding.

Those derivation-shaped forms are kept as :func:`conv2d_input_grad_by_full_convolution` and
:func:`conv2d_weight_grad_by_cross_correlation`. The layer computes the same sums as matrix
products (im2col): forward copies every kernel window once into a column matrix
``cols[g, (i, j, c), (n, oh, ow)]`` (kept in the cache) and multiplies it by the kernel matrix,
one GEMM per group; grad_weight is ``dout @ cols.T``. grad_input at stride 1 (with at least as
many input as output channels) is the full convolution itself, evaluated by im2col of the padded
dout and one GEMM with the rotated kernel (at stride 1 the "stride-dilated" dout is dout);
otherwise it is ``W.T @ dout`` scattered back onto the input positions (col2im: a loop over the
kh*kw kernel offsets adding unit-stride slices of each stride phase), the same sums without the
zero rows of the dilated dout. Arrays are kept channel-major, (C, N, H, W), inside the GEMM
machinery, so that one kernel offset's rows of the column matrix are one shifted slab of the
input. Depthwise convolutions (one input channel per group) take the same path, their GEMMs being
batched matrix-vector products.

The module holds the layer itself (:func:`conv2d_forward`, :func:`conv2d_backward`, the fast
paths); the reusable pieces live in :mod:`._conv_parts`, the GEMM machinery (im2col, col2im) in
:mod:`._conv_gemm` and the derivation-shaped gradients in :mod:`._conv_derivation`. All their
public names are importable from here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._conv_derivation import (
    _transposed_rotated_kernel,
    conv2d_input_grad_by_full_convolution,
    conv2d_weight_grad_by_cross_correlation,
)
from ._conv_gemm import (
    _col2im,
    _correlate_by_gemm,
    _im2col,
    _kernel_matrix,
    channel_major_padded,
)
from ._conv_parts import (
    Pair,
    SidePadding,
    _extent,
    _pair,
    conv2d_output_size,
    cross_correlate,
    dilate,
    pad,
    resolve_padding,
    rotate_180,
    sliding_windows,
)

__all__ = [
    "Conv2dCache",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_input_grad_by_full_convolution",
    "conv2d_output_size",
    "conv2d_weight_grad_by_cross_correlation",
    "cross_correlate",
    "dilate",
    "pad",
    "resolve_padding",
    "rotate_180",
    "sliding_windows",
]


def _crop(grad_padded: np.ndarray, padding: SidePadding, height: int, width: int) -> np.ndarray:
    """The input-sized part of a gradient over the padded input (the padding gets no gradient)."""
    (top, _), (left, _) = padding
    return np.ascontiguousarray(grad_padded[:, :, top : top + height, left : left + width])


@dataclass(frozen=True)
class Conv2dCache:
    """What conv2d_backward needs from the forward pass."""

    x_padded: np.ndarray  # (N, C, Hp, Wp), forward input after zero padding
    weight: np.ndarray  # (F, C // groups, kh, kw), at the input's dtype
    has_bias: bool
    input_shape: tuple[int, ...]  # (N, C, H, W)
    padding: SidePadding
    stride: Pair
    dilation: Pair
    groups: int
    # (groups, kh*kw*Cg, N*OH*OW) from _im2col, reused by grad_weight; None rebuilds them.
    columns: np.ndarray | None = None
    out_size: Pair = (0, 0)  # (OH, OW)


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: Pair,
    padding: str | Pair,
    dilation: Pair,
    groups: int,
) -> tuple[np.ndarray, Conv2dCache]:
    """Forward pass of torch.nn.functional.conv2d.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (F, C // groups, kh, kw)
    bias : ndarray of shape (F,) or None
    stride, dilation : (h, w)
    padding : (ph, pw), 'same' (stride must be 1) or 'valid'
    groups : int, dividing C and F (groups == C is a depthwise convolution)

    Returns
    -------
    out : ndarray of shape (N, F, OH, OW), dtype of ``x``, with
        ``OH = (H + pad_top + pad_bottom - dh*(kh-1) - 1) // sh + 1`` (likewise OW)
    cache : Conv2dCache for :func:`conv2d_backward`

    Notes
    -----
    Computed as one GEMM per group, ``out[n, g*Fg + f, p] = W[g, f, :] @ cols[g, :, (n, p)]``,
    on the im2col columns (one copy of every window), which the cache keeps for grad_weight.
    Depthwise convolutions take the same path: their GEMMs are batched matrix-vector products.
    """
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"expected 4-d input and weight, got {x.shape} and {weight.shape}")
    dtype = x.dtype
    weight = weight.astype(dtype, copy=False)
    channels = x.shape[1]
    filters, channels_per_group, kh, kw = weight.shape
    if groups < 1 or channels % groups or filters % groups or channels // groups != channels_per_group:
        raise ValueError(
            f"groups={groups} does not fit input channels {channels}, kernel shape {weight.shape}"
        )
    sides = resolve_padding(padding, weight.shape[2:], stride, dilation)
    x_padded = channel_major_padded(x, sides)  # (N, C, Hp, Wp) view of a (C, N, Hp, Wp) array
    extent = (_extent(kh, dilation[0]), _extent(kw, dilation[1]))
    if x_padded.shape[2] < extent[0] or x_padded.shape[3] < extent[1]:
        raise ValueError(
            f"input of spatial size {x_padded.shape[2:]} (after padding) is smaller than the "
            f"dilated kernel extent {extent}"
        )
    out_size = ((x_padded.shape[2] - extent[0]) // stride[0] + 1,
                (x_padded.shape[3] - extent[1]) // stride[1] + 1)
    out, columns = _correlate_by_gemm(
        x_padded, weight, stride, dilation, groups,
        None if bias is None else bias.astype(dtype, copy=False),
    )
    cache = Conv2dCache(
        x_padded=x_padded,
        weight=weight,
        has_bias=bias is not None,
        input_shape=x.shape,
        padding=sides,
        stride=stride,
        dilation=dilation,
        groups=groups,
        columns=columns,
        out_size=out_size,
    )
    return out, cache


def conv2d_backward(
    dout: np.ndarray, cache: Conv2dCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Backward pass of torch.nn.functional.conv2d.

    With ``dout_dilated = dilate(dout, stride)`` (dout[oh, ow] placed at row oh*sh, column ow*sw):

    * grad_bias[f] = sum of dout[:, f] over batch and space;
    * grad_weight = the cross-correlation of the padded input with dout as the kernel, dout's
      taps ``stride`` apart (see :func:`conv2d_weight_grad_by_cross_correlation`);
    * grad_input = the FULL convolution of the stride-dilated dout with the kernel, i.e. the
      cross-correlation of ``dout_dilated`` zero-padded by the kernel extent - 1 with the
      180-degree-rotated kernel (in/out channels swapped per group), cropped by the forward
      padding (see :func:`conv2d_input_grad_by_full_convolution`).

    Both are computed here as matrix products, which add up the very same products without
    building the zero-stuffed ``dout_dilated``: ``grad_weight[g] = dout[g] @ cols[g].T`` on the
    forward's im2col columns, and grad_input either as that full convolution itself (stride 1, at
    least as many input as output channels: ``dout_dilated`` is dout, so one im2col of the padded
    dout and one GEMM with the rotated kernel) or as ``col2im(W[g].T @ dout[g])``, where col2im adds
    the gradient of every window element back onto the input element it was copied from (rows the
    strided windows never reached keep a zero gradient). grad_input is built a few images at a
    time when those window matrices would be large (over ``_BLOCK_BYTES``).

    Parameters
    ----------
    dout : ndarray of shape (N, F, OH, OW), upstream gradient
    cache : Conv2dCache from :func:`conv2d_forward`

    Returns
    -------
    grad_input : ndarray of shape (N, C, H, W)
    grad_weight : ndarray of shape (F, C // groups, kh, kw)
    grad_bias : ndarray of shape (F,), or None when forward had no bias
    """
    x_padded, weight, groups = cache.x_padded, cache.weight, cache.groups
    stride, dilation = cache.stride, cache.dilation
    dtype = x_padded.dtype
    dout = np.asarray(dout).astype(dtype, copy=False)
    batch, _, height, width = cache.input_shape
    filters, channels_per_group, kh, kw = weight.shape
    filters_per_group = filters // groups
    out_size = cache.out_size if cache.out_size != (0, 0) else dout.shape[2:]

    grad_bias = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None

    columns = cache.columns
    if columns is None:  # a cache built by hand, without the forward's columns
        columns = _im2col(x_padded, (kh, kw), stride, dilation, groups)
    # dout as one (Fg, N*OH*OW) matrix per group: a single copy of dout.
    dout_matrix = np.ascontiguousarray(
        dout.reshape(batch, groups, filters_per_group, out_size[0] * out_size[1]).transpose(1, 2, 0, 3)
    ).reshape(groups, filters_per_group, batch * out_size[0] * out_size[1])
    # grad_weight[f, (i, j, c)] = sum_{n, oh, ow} dout[n, f, oh, ow] * x_pad[n, c, oh*sh + i*dh, ...]
    grad_weight = (dout_matrix @ columns.transpose(0, 2, 1)).reshape(
        filters, kh, kw, channels_per_group
    )
    grad_weight = np.ascontiguousarray(grad_weight.transpose(0, 3, 1, 2))
    grad_input = np.empty(cache.input_shape, dtype=dtype)
    per_pixel = max(kh * kw * max(filters, groups * channels_per_group), 1) * dtype.itemsize
    if stride == (1, 1) and groups * channels_per_group >= filters:
        # Unit stride: the full convolution itself is a plain GEMM-sized cross-correlation (the
        # stride-dilated dout is dout itself), so compute the derivation's form directly. (With
        # fewer input than output channels its GEMM is thinner than W.T @ dout: col2im below.)
        for block in _image_blocks(batch, per_pixel * height * width):
            grad_input[block] = _input_grad_unit_stride(
                dout[block], weight, (block.stop - block.start, *cache.input_shape[1:]), cache.padding,
                dilation, groups)
        return grad_input, grad_weight, grad_bias
    # Strided: W[g].T @ dout[g] is the gradient of every window element; col2im adds it back where
    # it was read from, so the zero rows of the stride-dilated dout are never built or multiplied.
    kernel_matrix_t = _kernel_matrix(weight, groups).transpose(0, 2, 1)  # (g, kh*kw*Cg, Fg)
    pixels = out_size[0] * out_size[1]
    for block in _image_blocks(batch, per_pixel * pixels):
        dout_block = dout_matrix[:, :, block.start * pixels : block.stop * pixels]  # its images' columns
        if filters_per_group == 1:  # an outer product per group: a broadcast multiply, not a GEMM
            grad_columns = kernel_matrix_t * dout_block
        else:
            grad_columns = kernel_matrix_t @ dout_block
        grad_padded = _col2im(grad_columns, (block.stop - block.start, *x_padded.shape[1:]), (kh, kw), stride,
                              dilation, out_size)
        grad_input[block] = _crop(grad_padded, cache.padding, height, width)
    return grad_input, grad_weight, grad_bias


# grad_input is built a few images at a time, so that its window matrices (the gradient of every
# window element) stay small enough to be reused from the allocator rather than mapped afresh (and
# page-faulted) on every call. Every image's gradient is the same sums either way (BLAS may round
# a smaller product differently, by an ulp); a batch that fits is one block, as before.
_BLOCK_BYTES = 4 << 20


def _image_blocks(batch: int, bytes_per_image: int) -> list[slice]:
    """Consecutive slices of the batch whose window matrices take at most _BLOCK_BYTES (one image at least)."""
    size = max(1, _BLOCK_BYTES // max(bytes_per_image, 1))
    return [slice(start, min(start + size, batch)) for start in range(0, batch, size)]


def _input_grad_unit_stride(
    dout: np.ndarray, weight: np.ndarray, input_shape: tuple[int, ...], padding: SidePadding,
    dilation: Pair, groups: int,
) -> np.ndarray:
    """grad_input of a stride-1 conv2d as the full convolution, computed by im2col and GEMM.

    Input row y (unpadded) is read as padded row y + top by outputs oh = y + top - i*dh, so
    ``grad_x[y] = sum_i dout[y + top - i*dh] * W[i]``: a cross-correlation of dout padded by
    ``extent - 1 - top`` rows on top (cropped where negative) with the rotated kernel, evaluated
    only at the H x W input rows (the forward padding is never computed, so nothing is cropped).
    """
    batch, _, height, width = input_shape
    _, filters, out_h, out_w = dout.shape
    kh, kw = weight.shape[2:]
    extent_h, extent_w = _extent(kh, dilation[0]), _extent(kw, dilation[1])
    (top, _), (left, _) = padding
    shift_h, shift_w = extent_h - 1 - top, extent_w - 1 - left  # dout row oh sits at oh + shift_h
    rows_from, cols_from = max(0, -shift_h), max(0, -shift_w)
    rows_to = min(out_h, height + extent_h - 1 - shift_h)
    cols_to = min(out_w, width + extent_w - 1 - shift_w)
    visible = dout[:, :, rows_from:rows_to, cols_from:cols_to]
    # dout_full as a channel-major padded array (what _im2col reads fastest).
    dout_full = channel_major_padded(
        visible,
        ((rows_from + shift_h, height + extent_h - 1 - (rows_to + shift_h)),
         (cols_from + shift_w, width + extent_w - 1 - (cols_to + shift_w))),
    ) if rows_to > rows_from and cols_to > cols_from else np.zeros(
        (batch, filters, height + extent_h - 1, width + extent_w - 1), dtype=dout.dtype)
    grad_input, _ = _correlate_by_gemm(
        dout_full, _transposed_rotated_kernel(weight, groups), (1, 1), dilation, groups
    )
    return grad_input
