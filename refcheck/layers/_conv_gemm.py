"""conv2d's matrix-product machinery: im2col, the kernel as a matrix, col2im.

Everything here keeps arrays CHANNEL-MAJOR, ``(C, N, H, W)``: then the block of im2col rows that
belongs to one kernel offset, ``cols[g, (i, j, :), :]``, is a plain (Cg, N, OH, OW) slab of the
padded input, shifted by the offset, and is copied (or, in col2im, added back) with one
whole-row strided operation per offset. With a stride ``s > 1`` the padded input is first split
into its ``sh * sw`` phases (rows ``py::sh``, columns ``px::sw``), so that every offset reads (and
col2im writes) a phase with unit stride: window ``(oh, ow)`` at offset ``(i, j)`` reads padded row
``oh*sh + i*dh = (oh + a)*sh + py`` with ``a, py = divmod(i*dh, sh)``.

:func:`_im2col` copies every kernel window once into one column matrix per group,
``cols[g, (i, j, c), (n, oh, ow)]``; a cross-correlation is then one GEMM per group with
:func:`_kernel_matrix` (:func:`_correlate_by_gemm`). :func:`_col2im` is the adjoint of
:func:`_im2col`: it adds a gradient over the columns back onto the input elements they copied.
"""
from __future__ import annotations

import numpy as np

from ._conv_parts import Pair, _extent


def channel_major_padded(x: np.ndarray, padding: tuple[Pair, Pair], room: Pair | None = None) -> np.ndarray:
    """``x`` (N, C, H, W) zero-padded, as an (N, C, Hp, Wp) VIEW of a contiguous (C, N, Hp, Wp) array.

    ``room`` (optional) makes the padded array at least that large (extra zeros at the bottom/right).
    """
    (top, bottom), (left, right) = padding
    batch, channels, height, width = x.shape
    padded_h, padded_w = top + height + bottom, left + width + right
    if room is not None:
        padded_h, padded_w = max(padded_h, room[0]), max(padded_w, room[1])
    buffer = np.zeros((channels, batch, padded_h, padded_w), dtype=x.dtype)
    buffer[:, :, top : top + height, left : left + width] = x.transpose(1, 0, 2, 3)
    return buffer.transpose(1, 0, 2, 3)


def _phase_reader(x_cm: np.ndarray, stride: Pair):
    """A function ``(row_offset, col_offset, out_size) -> view`` of the channel-major padded input.

    The view is ``x_cm[:, :, oh*sh + row_offset, ow*sw + col_offset]`` over every (oh, ow) < out_size,
    read from a contiguous copy of the right phase when the stride is not 1.
    """
    sh, sw = stride
    if (sh, sw) == (1, 1):
        return lambda r, q, size: x_cm[:, :, r : r + size[0], q : q + size[1]]
    phases: dict[Pair, np.ndarray] = {}

    def read(r: int, q: int, size: Pair) -> np.ndarray:
        (a, py), (b, px) = divmod(r, sh), divmod(q, sw)
        if (py, px) not in phases:
            phases[py, px] = np.ascontiguousarray(x_cm[:, :, py::sh, px::sw])
        return phases[py, px][:, :, a : a + size[0], b : b + size[1]]

    return read


def _im2col(x_padded: np.ndarray, kernel_size: Pair, stride: Pair, dilation: Pair, groups: int) -> np.ndarray:
    """Every kernel window of a padded input copied once into per-group column matrices.

    Parameters
    ----------
    x_padded : ndarray of shape (N, C, Hp, Wp); fastest as a view of a channel-major array
        (:func:`channel_major_padded`), any layout works.

    Returns
    -------
    ndarray of shape (groups, kh*kw*Cg, N*OH*OW), contiguous, with
    ``cols[g, (i, j, c), (n, oh, ow)] = x_padded[n, g*Cg + c, oh*sh + i*dh, ow*sw + j*dw]``.
    The kernel offset (i, j) is the outer part of a row index, so the rows of one offset form a
    contiguous (Cg, N, OH, OW) block, filled by one copy per offset.
    """
    batch, channels, padded_h, padded_w = x_padded.shape
    (kh, kw), (dh, dw) = kernel_size, dilation
    extent = (_extent(kh, dh), _extent(kw, dw))
    if padded_h < extent[0] or padded_w < extent[1]:
        raise ValueError(
            f"input of spatial size {x_padded.shape[2:]} (after padding) is smaller than the "
            f"dilated kernel extent {extent}"
        )
    out_size = ((padded_h - extent[0]) // stride[0] + 1, (padded_w - extent[1]) // stride[1] + 1)
    columns = np.empty((groups, kh, kw, channels // groups, batch) + out_size, dtype=x_padded.dtype)
    read = _phase_reader(x_padded.transpose(1, 0, 2, 3), stride)
    for i in range(kh):
        for j in range(kw):
            block = read(i * dh, j * dw, out_size)
            columns[:, i, j] = block.reshape((groups, channels // groups, batch) + out_size)
    # Sizes spelled out: -1 is ambiguous when the batch is empty.
    return columns.reshape(groups, kh * kw * (channels // groups), batch * out_size[0] * out_size[1])


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
    out : ndarray of shape (N, F, OH, OW), contiguous
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
    batch, channels, padded_h, padded_w = padded_shape
    groups = grad_columns.shape[0]
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = kernel_size, stride, dilation, out_size
    per_offset = grad_columns.reshape(groups, kh, kw, channels // groups, batch, out_h, out_w)
    # Accumulate channel-major, the layout of one offset's block, into each stride phase (rows
    # py::sh, columns px::sw) of the padded input: there an offset's windows are unit-stride.
    phase_h, phase_w = -(-padded_h // sh), -(-padded_w // sw)
    phases = np.zeros((sh, sw, channels, batch, phase_h, phase_w), dtype=grad_columns.dtype)
    for i in range(kh):
        for j in range(kw):
            # Within one kernel offset distinct windows read distinct elements, so += is exact;
            # the kh*kw offsets overlap one another and accumulate.
            (a, py), (b, px) = divmod(i * dh, sh), divmod(j * dw, sw)
            phases[py, px, :, :, a : a + out_h, b : b + out_w] += per_offset[:, i, j].reshape(
                channels, batch, out_h, out_w
            )
    if (sh, sw) == (1, 1):
        return phases[0, 0].transpose(1, 0, 2, 3)
    grad = np.empty((channels, batch, padded_h, padded_w), dtype=grad_columns.dtype)
    for py in range(sh):
        for px in range(sw):
            target = grad[:, :, py::sh, px::sw]
            target[...] = phases[py, px, :, :, : target.shape[2], : target.shape[3]]
    return grad.transpose(1, 0, 2, 3)
