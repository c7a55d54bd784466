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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "Conv2dCache",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_output_size",
    "cross_correlate",
    "dilate",
    "pad",
    "resolve_padding",
    "rotate_180",
    "sliding_windows",
]

Pair = tuple[int, int]
# ((top, bottom), (left, right)): padding that may differ on the two sides of an axis.
SidePadding = tuple[Pair, Pair]


def _pair(value: int | tuple[int, int], name: str) -> Pair:
    """Return ``value`` as an (h, w) pair of Python ints."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an (h, w) pair, got {value!r}")
    return int(value[0]), int(value[1])


def _extent(kernel: int, dilation: int) -> int:
    """Number of input rows (or columns) one dilated kernel window spans."""
    return dilation * (kernel - 1) + 1


def conv2d_output_size(
    size: int, kernel: int, stride: int, padding_total: int, dilation: int
) -> int:
    """Output length along one axis.

    ``(size + padding_total - dilation*(kernel-1) - 1) // stride + 1``; a value below 1 means the
    dilated kernel does not fit in the padded input.
    """
    return (size + padding_total - _extent(kernel, dilation)) // stride + 1


def resolve_padding(
    padding: str | int | tuple[int, int], kernel_size: Pair, stride: Pair, dilation: Pair
) -> SidePadding:
    """Turn a conv2d ``padding`` argument into explicit per-side padding.

    Parameters
    ----------
    padding : (ph, pw), int, 'valid' or 'same'
        'valid' means no padding. 'same' (stride 1 only) pads ``dilation*(k-1)`` in total per
        axis, the smaller half on the top/left and the extra element on the bottom/right,
        as torch does for even kernels.
    kernel_size, stride, dilation : (h, w)

    Returns
    -------
    ((top, bottom), (left, right))
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' requires stride (1, 1), got {stride}")
            sides = []
            for kernel, dil in zip(kernel_size, dilation):
                total = dil * (kernel - 1)
                sides.append((total // 2, total - total // 2))
            return sides[0], sides[1]
        raise ValueError(f"padding string must be 'same' or 'valid', got {padding!r}")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {(ph, pw)}")
    return (ph, ph), (pw, pw)


def pad(x: np.ndarray, padding: SidePadding) -> np.ndarray:
    """Zero-pad the last two axes of ``x``.

    Parameters
    ----------
    x : ndarray of shape (..., H, W)
    padding : ((top, bottom), (left, right))

    Returns
    -------
    ndarray of shape (..., top + H + bottom, left + W + right), a new array.
    """
    (top, bottom), (left, right) = padding
    height, width = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + (top + height + bottom, left + width + right), dtype=x.dtype)
    out[..., top : top + height, left : left + width] = x
    return out


def dilate(x: np.ndarray, factor: Pair) -> np.ndarray:
    """Insert ``factor - 1`` zeros between neighbouring elements of the last two axes.

    Parameters
    ----------
    x : ndarray of shape (..., H, W)
    factor : (fh, fw)

    Returns
    -------
    ndarray of shape (..., fh*(H-1) + 1, fw*(W-1) + 1) with ``out[..., fh*i, fw*j] = x[..., i, j]``.
    """
    fh, fw = factor
    height, width = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + (fh * (height - 1) + 1, fw * (width - 1) + 1), dtype=x.dtype)
    out[..., ::fh, ::fw] = x
    return out


def rotate_180(kernel: np.ndarray) -> np.ndarray:
    """Rotate the last two axes by 180 degrees (flip rows and columns)."""
    return kernel[..., ::-1, ::-1]


def sliding_windows(x: np.ndarray, kernel_size: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """Read-only view of every (strided, dilated) kernel window of an already padded input.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    kernel_size, stride, dilation : (h, w)

    Returns
    -------
    view of shape (N, C, OH, OW, kh, kw) with
    ``view[n, c, oh, ow, i, j] = x[n, c, oh*sh + i*dh, ow*sw + j*dw]`` and
    ``OH = (H - dh*(kh-1) - 1) // sh + 1`` (likewise OW).
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    extent = (_extent(kh, dh), _extent(kw, dw))
    if x.shape[2] < extent[0] or x.shape[3] < extent[1]:
        raise ValueError(
            f"input of spatial size {x.shape[2:]} (after padding) is smaller than the "
            f"dilated kernel extent {extent}"
        )
    # Every position the dilated window fits, then keep every stride-th position and
    # every dilation-th element inside a window.
    windows = sliding_window_view(x, extent, axis=(2, 3))
    return windows[:, :, ::sh, ::sw, ::dh, ::dw]


def cross_correlate(
    x: np.ndarray, kernel: np.ndarray, *, stride: Pair, dilation: Pair, groups: int
) -> np.ndarray:
    """Grouped cross-correlation of an already padded input (conv2d without padding or bias).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    kernel : ndarray of shape (F, C // groups, kh, kw)
    stride, dilation : (h, w)
    groups : int, dividing both C and F

    Returns
    -------
    ndarray of shape (N, F, OH, OW), ``OH = (H - dh*(kh-1) - 1) // sh + 1`` (likewise OW), with
    ``out[n, f, oh, ow] = sum_{c,i,j} x[n, g*Cg + c, oh*sh + i*dh, ow*sw + j*dw]
    * kernel[f, c, i, j]`` where ``g = f // (F // groups)`` and ``Cg = C // groups``.
    """
    batch, channels = x.shape[:2]
    filters, channels_per_group, kh, kw = kernel.shape
    if channels % groups or filters % groups or channels // groups != channels_per_group:
        raise ValueError(
            f"groups={groups} does not fit input channels {channels}, kernel shape {kernel.shape}"
        )
    filters_per_group = filters // groups
    windows = sliding_windows(x, (kh, kw), stride, dilation)
    out_h, out_w = windows.shape[2:4]
    # Split channels into (group, channel-in-group) and lay the windows out as one matrix per
    # group: rows are (n, oh, ow) positions, columns are (c, i, j) taps. One batched matmul
    # over groups then does all positions at once (copying the windows, im2col style).
    columns = windows.reshape(batch, groups, channels_per_group, out_h, out_w, kh, kw)
    columns = columns.transpose(1, 0, 3, 4, 2, 5, 6).reshape(
        groups, batch * out_h * out_w, channels_per_group * kh * kw
    )
    kernel_matrix = kernel.reshape(groups, filters_per_group, channels_per_group * kh * kw)
    out = columns @ kernel_matrix.transpose(0, 2, 1)  # (groups, N*OH*OW, Fg)
    out = out.reshape(groups, batch, out_h, out_w, filters_per_group)
    return out.transpose(1, 0, 4, 2, 3).reshape(batch, filters, out_h, out_w)


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
    """
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"expected 4-d input and weight, got {x.shape} and {weight.shape}")
    dtype = x.dtype
    weight = weight.astype(dtype, copy=False)
    sides = resolve_padding(padding, weight.shape[2:], stride, dilation)
    x_padded = pad(x, sides)
    out = cross_correlate(x_padded, weight, stride=stride, dilation=dilation, groups=groups)
    if bias is not None:
        out += bias.astype(dtype, copy=False)[None, :, None, None]
    cache = Conv2dCache(
        x_padded=x_padded,
        weight=weight,
        has_bias=bias is not None,
        input_shape=x.shape,
        padding=sides,
        stride=stride,
        dilation=dilation,
        groups=groups,
    )
    return out, cache


def conv2d_backward(
    dout: np.ndarray, cache: Conv2dCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Backward pass of torch.nn.functional.conv2d.

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
    dout = dout.astype(dtype, copy=False)
    batch, channels, height, width = cache.input_shape
    filters, channels_per_group, kh, kw = weight.shape
    filters_per_group = filters // groups

    # grad_bias: bias[f] is added to every output position of channel f.
    grad_bias = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None

    # grad_weight[f, c, i, j] = sum_{n, oh, ow} dout[n, f, oh, ow] * x_pad[n, c, oh*sh + i*dh, ...]:
    # a cross-correlation of x_pad with dout as the kernel, summed over the batch. So the batch
    # plays the channel role and the channel the batch role; dout's taps are sh apart (stride
    # becomes dilation) and neighbouring outputs i, i+1 are dh apart (dilation becomes stride).
    # Groups carry over: input channel (g, n) only meets kernel channel n of the filters of group g.
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
    grad_weight = grad_weight[:, :, :kh, :kw].transpose(1, 0, 2, 3)

    # grad_input: x_pad[y] feeds out[oh] through tap i whenever y = oh*sh + i*dh, so
    # grad_x_pad[y] = sum_i dout_dilated[y - i*dh] * weight[i], where
    # dout_dilated = dilate(dout, stride) holds dout[oh] at row oh*sh: a FULL convolution.
    # As a cross-correlation: pad dout_dilated by the kernel extent - 1 on every side and
    # slide the 180-degree-rotated kernel over it (same dilation, stride 1).
    dout_dilated = dilate(dout, stride)
    extent_h, extent_w = _extent(kh, dilation[0]), _extent(kw, dilation[1])
    dout_full = pad(dout_dilated, ((extent_h - 1, extent_h - 1), (extent_w - 1, extent_w - 1)))
    # Per group the kernel maps Cg inputs to Fg outputs; backwards it maps Fg to Cg: swap the axes.
    kernel_transposed = weight.reshape(groups, filters_per_group, channels_per_group, kh, kw)
    kernel_transposed = kernel_transposed.transpose(0, 2, 1, 3, 4).reshape(
        channels, filters_per_group, kh, kw
    )
    grad_reached = cross_correlate(
        dout_full, rotate_180(kernel_transposed), stride=(1, 1), dilation=dilation, groups=groups
    )  # (N, C, sh*(OH-1) + extent_h, sw*(OW-1) + extent_w)
    # Rows/cols at the bottom/right that no forward window reached get zero gradient; then the
    # forward padding (possibly asymmetric, for 'same') is cropped away.
    (top, _), (left, _) = cache.padding
    grad_input = np.zeros((batch, channels, height, width), dtype=dtype)
    reached_h = max(0, min(grad_reached.shape[2] - top, height))
    reached_w = max(0, min(grad_reached.shape[3] - left, width))
    grad_input[:, :, :reached_h, :reached_w] = grad_reached[
        :, :, top : top + reached_h, left : left + reached_w
    ]
    return grad_input, grad_weight, grad_bias
