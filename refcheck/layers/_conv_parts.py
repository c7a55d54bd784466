"""The reusable pieces of conv2d: padding and output sizes, pad, dilate, rotate, windows.

Everything here works on the last two (spatial) axes of an ``(N, C, H, W)`` array. torch's conv2d,
its weight gradient and its input gradient are all cross-correlations (:func:`cross_correlate`)
of arrays built with :func:`pad`, :func:`dilate` and :func:`rotate_180`; see
:mod:`refcheck.layers.conv` for how they fit together.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "Pair",
    "SidePadding",
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
