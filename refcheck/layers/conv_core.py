"""The dimension-agnostic convolution core in numpy: padding, im2col / col2im, and the three passes.

A convolution over the trailing ``n`` spatial axes of a ``(N, C, *spatial)`` input is a
cross-correlation,

    out[n, f, o] = sum_{c, k} x_pad[n, g*Cg + c, o*s + k*d] * weight[f, c, k]

with ``o`` and ``k`` multi-indices over the spatial axes, ``g = f // Fg`` the group of output
channel ``f``, ``Cg = C / groups`` and ``Fg = F / groups``. Three pieces share one im2col layout
(:func:`im2col` / :func:`col2im`):

* :func:`cross_correlate_nd`  -- the forward pass without bias;
* :func:`conv_weight_gradient` -- ``grad_weight[f, c, k] = sum_{n, o} dout[n, f, o] *
  x_pad[n, g*Cg + c, o*s + k*d]``, the columns of the padded input times dout;
* :func:`conv_input_gradient`  -- ``grad_x_pad[n, g*Cg + c, o*s + k*d] += dout[n, f, o] *
  weight[f, c, k]``: dout times the kernel scattered back onto the positions each window read
  (col2im), then cropped by the padding. This is the adjoint of the forward pass, i.e. a full
  convolution of the stride-dilated dout with the kernel, which is also exactly what
  ``conv_transpose{1,2,3}d`` computes (see :mod:`refcheck.layers.conv_transpose`).

conv1d and conv3d (:mod:`refcheck.layers.conv_nd`) and conv_transpose2d are built on them.
"""
from __future__ import annotations

from math import prod

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "as_tuple",
    "col2im",
    "conv_input_gradient",
    "conv_weight_gradient",
    "cross_correlate_nd",
    "im2col",
    "pad_nd",
    "resolve_padding_nd",
]

Sizes = tuple[int, ...]
# One (before, after) pair per spatial axis.
SidePadding = tuple[tuple[int, int], ...]


def as_tuple(value: int | tuple[int, ...], ndim: int, name: str) -> Sizes:
    """``value`` as a tuple of ``ndim`` Python ints (an int is repeated, as torch does)."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * ndim
    values = tuple(int(v) for v in value)
    if len(values) == 1 and ndim > 1:
        values = values * ndim
    if len(values) != ndim:
        raise ValueError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    return values


def _extent(kernel: int, dilation: int) -> int:
    """Number of input positions one dilated kernel window spans along one axis."""
    return dilation * (kernel - 1) + 1


def resolve_padding_nd(
    padding: str | int | tuple[int, ...], kernel_size: Sizes, stride: Sizes, dilation: Sizes
) -> SidePadding:
    """Turn a conv ``padding`` argument into explicit (before, after) padding per spatial axis.

    Parameters
    ----------
    padding : int, tuple of ints, 'valid' or 'same'
        'valid' is no padding. 'same' (stride 1 only) pads ``dilation*(k-1)`` in total per axis,
        the smaller half before and the extra element after, as torch does for even kernels.
    kernel_size, stride, dilation : tuple of ints, one per spatial axis
    """
    ndim = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * ndim
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding='same' requires stride 1, got {stride}")
            totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
            return tuple((total // 2, total - total // 2) for total in totals)
        raise ValueError(f"padding string must be 'same' or 'valid', got {padding!r}")
    sizes = as_tuple(padding, ndim, "padding")
    if any(p < 0 for p in sizes):
        raise ValueError(f"padding must be non-negative, got {sizes}")
    return tuple((p, p) for p in sizes)


def pad_nd(x: np.ndarray, padding: SidePadding) -> np.ndarray:
    """Zero-pad the last ``len(padding)`` axes of ``x`` into a new array."""
    ndim = len(padding)
    spatial = x.shape[-ndim:]
    shape = x.shape[:-ndim] + tuple(lo + size + hi for (lo, hi), size in zip(padding, spatial))
    out = np.zeros(shape, dtype=x.dtype)
    inner = tuple(slice(lo, lo + size) for (lo, _), size in zip(padding, spatial))
    out[(..., *inner)] = x
    return out


def _check_groups(channels: int, kernel_shape: tuple[int, ...], groups: int) -> None:
    filters, channels_per_group = kernel_shape[:2]
    if groups < 1 or channels % groups or filters % groups or channels // groups != channels_per_group:
        raise ValueError(
            f"groups={groups} does not fit {channels} input channels and kernel shape {kernel_shape}"
        )


def im2col(
    x_padded: np.ndarray,
    kernel_size: Sizes,
    *,
    stride: Sizes,
    dilation: Sizes,
    groups: int,
    out_size: Sizes | None = None,
) -> np.ndarray:
    """Every kernel window of an already padded input, one row per window, grouped.

    Parameters
    ----------
    x_padded : ndarray of shape (N, C, *P), ``P`` the padded spatial sizes
    kernel_size, stride, dilation : tuple of ints, one per spatial axis
    groups : int, dividing C
    out_size : tuple of ints, optional
        Keep only the first ``out_size`` window positions per axis (default: every window that
        fits, ``O = (P - d*(k-1) - 1) // s + 1``).

    Returns
    -------
    ndarray of shape (groups, N * prod(O), (C // groups) * prod(kernel_size)), a copy, with
    row ``(n, o)`` and column ``(c, k)`` of group ``g`` holding ``x_padded[n, g*Cg + c, o*s + k*d]``.
    """
    ndim = len(kernel_size)
    spatial_axes = tuple(range(2, 2 + ndim))
    extents = tuple(_extent(k, d) for k, d in zip(kernel_size, dilation))
    if any(size < extent for size, extent in zip(x_padded.shape[2:], extents)):
        raise ValueError(
            f"input of spatial size {x_padded.shape[2:]} (after padding) is smaller than the "
            f"dilated kernel extent {extents}"
        )
    windows = sliding_window_view(x_padded, extents, axis=spatial_axes)
    # Keep every stride-th window position and every dilation-th element inside a window.
    keep_positions = tuple(slice(None, None if out_size is None else out_size[a] * s, s)
                           for a, s in enumerate(stride))
    keep_taps = tuple(slice(None, None, d) for d in dilation)
    windows = windows[(slice(None), slice(None), *keep_positions, *keep_taps)]
    batch, channels = x_padded.shape[:2]
    positions = windows.shape[2 : 2 + ndim]
    if out_size is not None and positions != tuple(out_size):
        raise ValueError(f"only {positions} windows fit, {tuple(out_size)} requested")
    channels_per_group = channels // groups
    grouped = windows.reshape(batch, groups, channels_per_group, *positions, *kernel_size)
    # (g, n, o..., c, k...): rows are (n, o), columns are (c, k).
    order = (1, 0, *range(3, 3 + ndim), 2, *range(3 + ndim, 3 + 2 * ndim))
    return grouped.transpose(order).reshape(
        groups, batch * prod(positions), channels_per_group * prod(kernel_size)
    )


def col2im(
    columns: np.ndarray,
    padded_shape: tuple[int, ...],
    kernel_size: Sizes,
    *,
    out_size: Sizes,
    stride: Sizes,
    dilation: Sizes,
    groups: int,
) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every window row back onto the positions it was read from.

    Parameters
    ----------
    columns : ndarray of shape (groups, N * prod(out_size), Cg * prod(kernel_size))
    padded_shape : (N, C, *P), the shape of the padded array to rebuild
    out_size : window positions per axis, as in the im2col call being undone

    Returns
    -------
    ndarray of ``padded_shape`` with ``out[n, g*Cg + c, o*s + k*d] += columns[g, (n, o), (c, k)]``
    summed over all windows (overlapping windows accumulate); positions no window read are zero.
    """
    ndim = len(kernel_size)
    batch, channels = padded_shape[:2]
    channels_per_group = channels // groups
    grouped = columns.reshape(groups, batch, *out_size, channels_per_group, *kernel_size)
    # back to (n, g, c, o..., k...), then channels (g, c) merged.
    order = (1, 0, 2 + ndim, *range(2, 2 + ndim), *range(3 + ndim, 3 + 2 * ndim))
    per_window = grouped.transpose(order).reshape(batch, channels, *out_size, *kernel_size)
    out = np.zeros(padded_shape, dtype=columns.dtype)
    for offset in np.ndindex(*kernel_size):
        # Within one kernel offset the windows touch distinct positions, so a sliced += is
        # safe; different offsets that touch the same position add up across iterations.
        target = tuple(
            slice(k * d, k * d + (o - 1) * s + 1, s)
            for k, d, o, s in zip(offset, dilation, out_size, stride)
        )
        out[(slice(None), slice(None), *target)] += per_window[(..., *offset)]
    return out


def _as_group_matrix(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, F, *O) -> (groups, N * prod(O), F // groups): rows (n, o), columns channel-in-group."""
    batch, filters = a.shape[:2]
    positions = a.shape[2:]
    grouped = a.reshape(batch, groups, filters // groups, *positions)
    order = (1, 0, *range(3, 3 + len(positions)), 2)
    return grouped.transpose(order).reshape(groups, batch * prod(positions), filters // groups)


def _from_group_matrix(m: np.ndarray, batch: int, positions: Sizes) -> np.ndarray:
    """Inverse of :func:`_as_group_matrix`: (groups, N * prod(O), Fg) -> (N, groups * Fg, *O)."""
    groups, _, per_group = m.shape
    grouped = m.reshape(groups, batch, *positions, per_group)
    order = (1, 0, 2 + len(positions), *range(2, 2 + len(positions)))
    return grouped.transpose(order).reshape(batch, groups * per_group, *positions)


def cross_correlate_nd(
    x_padded: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: Sizes,
    dilation: Sizes,
    groups: int,
    out_size: Sizes | None = None,
) -> np.ndarray:
    """Grouped cross-correlation of an already padded input (a conv without padding or bias).

    Parameters
    ----------
    x_padded : ndarray of shape (N, C, *P)
    kernel : ndarray of shape (F, C // groups, *K)
    out_size : optional cap on the window positions per axis (see :func:`im2col`)

    Returns
    -------
    ndarray of shape (N, F, *O) with
    ``out[n, f, o] = sum_{c, k} x_padded[n, g*Cg + c, o*s + k*d] * kernel[f, c, k]``.
    """
    _check_groups(x_padded.shape[1], kernel.shape, groups)
    kernel_size = kernel.shape[2:]
    columns = im2col(
        x_padded, kernel_size, stride=stride, dilation=dilation, groups=groups, out_size=out_size
    )
    filters = kernel.shape[0]
    kernel_matrix = kernel.reshape(groups, filters // groups, -1)  # (g, Fg, Cg*prod(K))
    out = columns @ kernel_matrix.transpose(0, 2, 1)  # (g, N*prod(O), Fg)
    positions = out_size if out_size is not None else tuple(
        (p - _extent(k, d)) // s + 1
        for p, k, d, s in zip(x_padded.shape[2:], kernel_size, dilation, stride)
    )
    return _from_group_matrix(out, x_padded.shape[0], tuple(positions))


def conv_weight_gradient(
    x_padded: np.ndarray,
    dout: np.ndarray,
    kernel_size: Sizes,
    *,
    stride: Sizes,
    dilation: Sizes,
    groups: int,
) -> np.ndarray:
    """``grad_weight[f, c, k] = sum_{n, o} dout[n, f, o] * x_padded[n, g*Cg + c, o*s + k*d]``.

    Parameters
    ----------
    x_padded : ndarray of shape (N, C, *P)
    dout : ndarray of shape (N, F, *O); only its first ``O`` window positions of x_padded are read

    Returns
    -------
    ndarray of shape (F, C // groups, *kernel_size)
    """
    columns = im2col(
        x_padded, kernel_size, stride=stride, dilation=dilation, groups=groups,
        out_size=dout.shape[2:],
    )
    dout_matrix = _as_group_matrix(dout, groups)  # (g, N*prod(O), Fg)
    grad = dout_matrix.transpose(0, 2, 1) @ columns  # (g, Fg, Cg*prod(K))
    channels_per_group = x_padded.shape[1] // groups
    return grad.reshape(dout.shape[1], channels_per_group, *kernel_size)


def conv_input_gradient(
    dout: np.ndarray,
    kernel: np.ndarray,
    *,
    input_size: Sizes,
    padding: SidePadding,
    stride: Sizes,
    dilation: Sizes,
    groups: int,
) -> np.ndarray:
    """Adjoint of a padded cross-correlation with respect to its input (transposed convolution).

    Parameters
    ----------
    dout : ndarray of shape (N, F, *O)
    kernel : ndarray of shape (F, C // groups, *K)
    input_size : spatial sizes of the unpadded input, one per axis
    padding : (before, after) padding per axis of the forward pass

    Returns
    -------
    ndarray of shape (N, C, *input_size) with
    ``grad[n, g*Cg + c, o*s + k*d - before] += dout[n, f, o] * kernel[f, c, k]`` summed over
    ``f`` in group ``g``, ``o`` and ``k``; contributions that land in the padding are dropped and
    positions no window reached get zero.
    """
    filters, channels_per_group = kernel.shape[:2]
    kernel_size = kernel.shape[2:]
    batch, positions = dout.shape[0], dout.shape[2:]
    kernel_matrix = kernel.reshape(groups, filters // groups, -1)  # (g, Fg, Cg*prod(K))
    grad_columns = _as_group_matrix(dout, groups) @ kernel_matrix  # (g, N*prod(O), Cg*prod(K))
    padded_size = tuple(lo + size + hi for (lo, hi), size in zip(padding, input_size))
    # The windows reach at most (O-1)*s + extent positions; make room when that passes the
    # padded size (a transposed conv's output_padding is the reverse case: room left unreached).
    room = tuple(
        max(p, (o - 1) * s + _extent(k, d))
        for p, o, s, k, d in zip(padded_size, positions, stride, kernel_size, dilation)
    )
    grad_padded = col2im(
        grad_columns, (batch, groups * channels_per_group, *room), kernel_size,
        out_size=positions, stride=stride, dilation=dilation, groups=groups,
    )
    inner = tuple(slice(lo, lo + size) for (lo, _), size in zip(padding, input_size))
    return np.ascontiguousarray(grad_padded[(slice(None), slice(None), *inner)])
