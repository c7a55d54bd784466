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
one GEMM per group; grad_weight is ``dout @ cols.T``. grad_input at stride 1 is the full
convolution itself, evaluated by im2col of the padded dout and one GEMM with the rotated kernel
(at stride 1 the "stride-dilated" dout is dout); at larger strides it is ``W.T @ dout`` scattered
back onto the input positions (col2im: a loop over the kh*kw kernel offsets adding strided
slices), the same sums without the zero rows of the dilated dout. Depthwise convolutions (one
input channel per group) loop over the kernel offsets instead, as their GEMMs would be too thin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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


def _im2col(x_padded: np.ndarray, kernel_size: Pair, stride: Pair, dilation: Pair, groups: int) -> np.ndarray:
    """Every kernel window of a padded input copied once into per-group column matrices.

    Returns
    -------
    ndarray of shape (groups, kh*kw*Cg, N*OH*OW), contiguous, with
    ``cols[g, (i, j, c), (n, oh, ow)] = x_padded[n, g*Cg + c, oh*sh + i*dh, ow*sw + j*dw]``.
    The kernel offset (i, j) is the outer part of a row index, so the rows of one offset form a
    contiguous (Cg, N, OH, OW) block (what :func:`_col2im` adds back in one strided slice).
    """
    batch, channels = x_padded.shape[:2]
    windows = sliding_windows(x_padded, kernel_size, stride, dilation)  # (N, C, OH, OW, kh, kw)
    out_h, out_w = windows.shape[2:4]
    kh, kw = kernel_size
    columns = np.empty(
        (groups, kh, kw, channels // groups, batch, out_h, out_w), dtype=x_padded.dtype
    )
    # (oh, ow) stay innermost on both sides, so the copy reads and writes whole rows.
    windows = windows.reshape(batch, groups, channels // groups, out_h, out_w, kh, kw)
    np.copyto(columns, windows.transpose(1, 5, 6, 2, 0, 3, 4))
    return columns.reshape(groups, -1, batch * out_h * out_w)


def _kernel_matrix(kernel: np.ndarray, groups: int) -> np.ndarray:
    """A (F, Cg, kh, kw) kernel as one (Fg, kh*kw*Cg) matrix per group, in :func:`_im2col`'s order."""
    filters, channels_per_group, kh, kw = kernel.shape
    matrix = kernel.reshape(groups, filters // groups, channels_per_group, kh, kw)
    return np.ascontiguousarray(matrix.transpose(0, 1, 3, 4, 2)).reshape(
        groups, filters // groups, kh * kw * channels_per_group
    )


def _correlate_by_gemm(
    x_padded: np.ndarray, kernel: np.ndarray, stride: Pair, dilation: Pair, groups: int,
    bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cross_correlate` (plus an optional bias) as im2col and one GEMM per group.

    Returns
    -------
    out : ndarray of shape (N, F, OH, OW)
    columns : ndarray of shape (groups, kh*kw*Cg, N*OH*OW), from :func:`_im2col`
    """
    batch = x_padded.shape[0]
    filters, _, kh, kw = kernel.shape
    columns = _im2col(x_padded, (kh, kw), stride, dilation, groups)
    product = _kernel_matrix(kernel, groups) @ columns  # (groups, Fg, N*OH*OW)
    out_h = (x_padded.shape[2] - _extent(kh, dilation[0])) // stride[0] + 1
    out_w = (x_padded.shape[3] - _extent(kw, dilation[1])) // stride[1] + 1
    product = product.reshape(filters, batch, out_h, out_w).transpose(1, 0, 2, 3)
    out = np.empty((batch, filters, out_h, out_w), dtype=x_padded.dtype)
    if bias is not None:  # added while the product is copied into the (N, F, OH, OW) layout
        np.add(product, bias[None, :, None, None], out=out)
    else:
        np.copyto(out, product)
    return out, columns


def _col2im(
    grad_columns: np.ndarray, padded_shape: tuple[int, ...], kernel_size: Pair, stride: Pair,
    dilation: Pair, out_size: Pair,
) -> np.ndarray:
    """Adjoint of :func:`_im2col`: add every column entry back onto the input element it copied.

    Parameters
    ----------
    grad_columns : ndarray of shape (groups, kh*kw*Cg, N*OH*OW)
    padded_shape : (N, C, Hp, Wp)

    Returns
    -------
    view of shape (N, C, Hp, Wp) (of a (C, N, Hp, Wp) array)
    """
    batch, channels = padded_shape[:2]
    groups = grad_columns.shape[0]
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = kernel_size, stride, dilation, out_size
    per_offset = grad_columns.reshape(groups, kh, kw, channels // groups, batch, out_h, out_w)
    # Accumulate channel-major, the layout of one offset's block, and transpose once at the end.
    grad = np.zeros((channels, batch) + tuple(padded_shape[2:]), dtype=grad_columns.dtype)
    for i in range(kh):
        for j in range(kw):
            # Within one kernel offset distinct windows read distinct elements, so += is exact;
            # the kh*kw offsets overlap one another and accumulate.
            rows = slice(i * dh, i * dh + sh * (out_h - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (out_w - 1) + 1, sw)
            grad[:, :, rows, cols] += per_offset[:, i, j].reshape(channels, batch, out_h, out_w)
    return grad.transpose(1, 0, 2, 3)


def _crop(grad_padded: np.ndarray, padding: SidePadding, height: int, width: int) -> np.ndarray:
    """The input-sized part of a gradient over the padded input (the padding gets no gradient)."""
    (top, _), (left, _) = padding
    return np.ascontiguousarray(grad_padded[:, :, top : top + height, left : left + width])


def _offset_view(x_padded: np.ndarray, i: int, j: int, stride: Pair, dilation: Pair, out_size: Pair):
    """``x_padded[..., oh*sh + i*dh, ow*sw + j*dw]`` for every output position (a strided view)."""
    (sh, sw), (dh, dw), (out_h, out_w) = stride, dilation, out_size
    return x_padded[..., i * dh : i * dh + sh * (out_h - 1) + 1 : sh,
                    j * dw : j * dw + sw * (out_w - 1) + 1 : sw]


def _is_depthwise(channels_per_group: int, groups: int) -> bool:
    """One input channel per group (depthwise, possibly with a channel multiplier)."""
    return channels_per_group == 1 and groups > 1


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
    # (groups, Cg*kh*kw, N*OH*OW) from _im2col, reused by grad_weight; None on the depthwise path.
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
    Depthwise convolutions (C // groups == 1) sum ``weight[:, 0, i, j] * x_pad[window offset i, j]``
    over the kh*kw offsets instead.
    """
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"expected 4-d input and weight, got {x.shape} and {weight.shape}")
    dtype = x.dtype
    weight = weight.astype(dtype, copy=False)
    batch, channels = x.shape[:2]
    filters, channels_per_group, kh, kw = weight.shape
    if groups < 1 or channels % groups or filters % groups or channels // groups != channels_per_group:
        raise ValueError(
            f"groups={groups} does not fit input channels {channels}, kernel shape {weight.shape}"
        )
    filters_per_group = filters // groups
    sides = resolve_padding(padding, weight.shape[2:], stride, dilation)
    x_padded = pad(x, sides)
    extent = (_extent(kh, dilation[0]), _extent(kw, dilation[1]))
    if x_padded.shape[2] < extent[0] or x_padded.shape[3] < extent[1]:
        raise ValueError(
            f"input of spatial size {x_padded.shape[2:]} (after padding) is smaller than the "
            f"dilated kernel extent {extent}"
        )
    out_size = ((x_padded.shape[2] - extent[0]) // stride[0] + 1,
                (x_padded.shape[3] - extent[1]) // stride[1] + 1)
    columns = None
    if _is_depthwise(channels_per_group, groups):
        # out[n, g, f] = sum_{i,j} weight[g, f, i, j] * x_pad[n, g, window offset (i, j)]
        out = np.zeros((batch, groups, filters_per_group) + out_size, dtype=dtype)
        taps = weight.reshape(groups, filters_per_group, kh, kw)
        for i in range(kh):
            for j in range(kw):
                view = _offset_view(x_padded, i, j, stride, dilation, out_size)[:, :, None]
                out += taps[None, :, :, i, j, None, None] * view
        out = out.reshape(batch, filters, *out_size)
        if bias is not None:
            out += bias.astype(dtype, copy=False)[None, :, None, None]
    else:
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

    Both are computed here as matrix products on the forward's im2col columns, which add up the
    very same products without building the zero-stuffed ``dout_dilated``:
    ``grad_weight[g] = dout[g] @ cols[g].T`` and ``grad_input = col2im(W[g].T @ dout[g])``, where
    col2im adds the gradient of every window element back onto the input element it was copied
    from (rows the strided windows never reached keep a zero gradient).

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

    if cache.columns is None and _is_depthwise(channels_per_group, groups):
        # Per kernel offset (i, j): grad_weight[g, f, i, j] = <dout[:, g, f], x_pad offset view>,
        # and that view's elements receive weight[g, f, i, j] * dout[:, g, f], summed over f.
        dout_g = dout.reshape(batch, groups, filters_per_group, *out_size)
        taps = weight.reshape(groups, filters_per_group, kh, kw)
        grad_weight = np.empty((groups, filters_per_group, kh, kw), dtype=dtype)
        grad_padded = np.zeros(x_padded.shape, dtype=dtype)
        for i in range(kh):
            for j in range(kw):
                view = _offset_view(x_padded, i, j, stride, dilation, out_size)
                grad_weight[:, :, i, j] = np.einsum("ngfhw,nghw->gf", dout_g, view)
                target = _offset_view(grad_padded, i, j, stride, dilation, out_size)
                if filters_per_group == 1:
                    target += taps[None, :, 0, i, j, None, None] * dout_g[:, :, 0]
                else:
                    target += np.einsum("ngfhw,gf->nghw", dout_g, taps[:, :, i, j])
        grad_weight = grad_weight.reshape(filters, 1, kh, kw)
        return _crop(grad_padded, cache.padding, height, width), grad_weight, grad_bias

    columns = cache.columns
    if columns is None:  # a cache built by hand, without the forward's columns
        columns = _im2col(x_padded, (kh, kw), stride, dilation, groups)
    # dout as one (Fg, N*OH*OW) matrix per group: a single copy of dout.
    dout_matrix = np.ascontiguousarray(
        dout.reshape(batch, groups, filters_per_group, -1).transpose(1, 2, 0, 3)
    ).reshape(groups, filters_per_group, -1)
    # grad_weight[f, (i, j, c)] = sum_{n, oh, ow} dout[n, f, oh, ow] * x_pad[n, c, oh*sh + i*dh, ...]
    grad_weight = (dout_matrix @ columns.transpose(0, 2, 1)).reshape(
        filters, kh, kw, channels_per_group
    )
    grad_weight = np.ascontiguousarray(grad_weight.transpose(0, 3, 1, 2))
    if stride == (1, 1):
        # Unit stride: the full convolution itself is a plain GEMM-sized cross-correlation (the
        # stride-dilated dout is dout itself), so compute the derivation's form directly.
        grad_input = _input_grad_unit_stride(dout, weight, cache.input_shape, cache.padding,
                                             dilation, groups)
        return grad_input, grad_weight, grad_bias
    # Strided: W[g].T @ dout[g] is the gradient of every window element; col2im adds it back where
    # it was read from, so the zero rows of the stride-dilated dout are never built or multiplied.
    grad_columns = _kernel_matrix(weight, groups).transpose(0, 2, 1) @ dout_matrix
    grad_padded = _col2im(grad_columns, x_padded.shape, (kh, kw), stride, dilation, out_size)
    return _crop(grad_padded, cache.padding, height, width), grad_weight, grad_bias


def _transposed_rotated_kernel(weight: np.ndarray, groups: int) -> np.ndarray:
    """The kernel of the full convolution: (C, F // groups, kh, kw), in/out swapped per group,
    rotated by 180 degrees."""
    filters, channels_per_group, kh, kw = weight.shape
    kernel = weight.reshape(groups, filters // groups, channels_per_group, kh, kw)
    kernel = kernel.transpose(0, 2, 1, 3, 4).reshape(
        groups * channels_per_group, filters // groups, kh, kw
    )
    return rotate_180(kernel)


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
    dout_full = np.zeros((batch, filters, height + extent_h - 1, width + extent_w - 1), dtype=dout.dtype)
    shift_h, shift_w = extent_h - 1 - top, extent_w - 1 - left  # dout row oh sits at oh + shift_h
    rows_from, cols_from = max(0, -shift_h), max(0, -shift_w)
    rows_to = min(out_h, dout_full.shape[2] - shift_h)
    cols_to = min(out_w, dout_full.shape[3] - shift_w)
    if rows_to > rows_from and cols_to > cols_from:
        dout_full[:, :, rows_from + shift_h : rows_to + shift_h, cols_from + shift_w : cols_to + shift_w] = (
            dout[:, :, rows_from:rows_to, cols_from:cols_to]
        )
    grad_input, _ = _correlate_by_gemm(
        dout_full, _transposed_rotated_kernel(weight, groups), (1, 1), dilation, groups
    )
    return grad_input


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
