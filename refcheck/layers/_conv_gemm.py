"""conv2d's matrix-product machinery: im2col, the kernel as a matrix, col2im.

:func:`_im2col` copies every kernel window of a padded input once into one column matrix per
group, ``cols[g, (i, j, c), (n, oh, ow)]``; a cross-correlation is then one GEMM per group with
:func:`_kernel_matrix` (:func:`_correlate_by_gemm`). :func:`_col2im` is the adjoint of
:func:`_im2col`: it adds a gradient over the columns back onto the input elements they copied.
"""
from __future__ import annotations

import numpy as np

from ._conv_parts import Pair, _extent, sliding_windows


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
