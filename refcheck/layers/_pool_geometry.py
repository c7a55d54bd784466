"""The geometry shared by the 2-D pooling layers: output sizes, per-axis windows, buffers.

:func:`pool_output_size` is torch's ``pooling_output_shape`` (the rule is spelled out in
:mod:`refcheck.layers.pooling`); :func:`_axes` validates a window sweep like torch and precomputes,
per spatial axis, the strided slices, validity masks and window lengths that max and average
pooling read; :func:`_window_copy` copies every window of a padded buffer once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["axis_layout", "pool_output_size", "pooling_input"]


def pool_output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """Number of pooling windows along one axis, exactly as torch computes it.

    Parameters
    ----------
    size, kernel, stride, padding, dilation : int
        Input length ``L``, kernel ``k``, stride ``s``, padding ``p`` (each side), dilation ``d``.
    ceil_mode : bool
        Round the window count up instead of down.

    Returns
    -------
    int
        ``floor((L + 2p - e) / s) + 1`` (``ceil`` with ``ceil_mode``), where
        ``e = d (k - 1) + 1``; with ``ceil_mode`` one window fewer when the last one would
        start at ``>= L + p`` (padded coordinates), i.e. in the right padding. May be ``<= 0``
        for impossible geometries (callers reject those).
    """
    effective = dilation * (kernel - 1) + 1
    span = size + 2 * padding - effective
    if ceil_mode:
        count = -(-span // stride) + 1
        # torch drops a last window that would start inside the right padding.
        if (count - 1) * stride >= size + padding:
            count -= 1
    else:
        count = span // stride + 1
    return count


@dataclass(frozen=True)
class _Axis:
    """Geometry of one spatial axis of a pooling window sweep.

    ``padded`` is the length of the zero-padded buffer (input starts at ``padding``), large
    enough for every window including a ``ceil_mode`` overhang. ``slices[i]`` selects, for
    kernel offset ``i``, the padded position seen by every output index; ``valid[i]`` says
    whether that position lies in the real input; ``window_full`` and ``window_clipped`` are
    the per-output window lengths counting padding (but not the overhang) and counting real
    input only.
    """

    size: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    out: int
    padded: int
    slices: tuple[slice, ...]
    valid: tuple[np.ndarray, ...]
    window_full: np.ndarray
    window_clipped: np.ndarray


def _axis(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool, name: str
) -> _Axis:
    """Validate one axis like torch and precompute its offsets, validity and window lengths."""
    if kernel < 1 or stride < 1 or dilation < 1:
        raise ValueError(f"{name}: kernel_size, stride and dilation must be positive")
    effective = dilation * (kernel - 1) + 1
    # torch checks both the kernel size and the effective (dilated) kernel size.
    if padding < 0 or padding > kernel // 2 or padding > effective // 2:
        raise ValueError(
            f"{name}: padding {padding} must be in [0, min(kernel // 2, effective_kernel // 2)]"
        )
    out = pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    if out < 1:
        raise ValueError(f"{name}: input size {size} gives output size {out} < 1")
    return axis_layout(size, kernel, stride, padding, dilation, out)


def axis_layout(size: int, kernel: int, stride: int, padding: int, dilation: int, out: int) -> _Axis:
    """Where ``out`` windows of one axis lie (hyperparameters already validated), for 1-D and 2-D pooling."""
    effective = dilation * (kernel - 1) + 1
    last_needed = (out - 1) * stride + effective  # exclusive end in padded coordinates
    padded = max(size + 2 * padding, last_needed)
    positions = np.arange(out) * stride - padding  # window starts in input coordinates
    slices = tuple(
        slice(offset * dilation, offset * dilation + (out - 1) * stride + 1, stride)
        for offset in range(kernel)
    )
    valid = tuple(
        (positions + offset * dilation >= 0) & (positions + offset * dilation < size)
        for offset in range(kernel)
    )
    # Window ends never pass the right padding: a ceil_mode overhang is not counted.
    ends = np.minimum(positions + kernel, size + padding)
    window_full = ends - positions
    window_clipped = np.minimum(ends, size) - np.maximum(positions, 0)
    return _Axis(
        size, kernel, stride, padding, dilation, out, padded, slices, valid,
        window_full, window_clipped,
    )


def _axes(
    x: np.ndarray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool,
) -> tuple[_Axis, _Axis]:
    height, width = x.shape[-2:]
    rows = _axis(height, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode, "height")
    cols = _axis(width, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode, "width")
    return rows, cols


def _zero_padded(x: np.ndarray, rows: _Axis, cols: _Axis) -> np.ndarray:
    """Copy ``x`` into a zero buffer with room for padding and ceil_mode overhang."""
    buffer = np.zeros(x.shape[:-2] + (rows.padded, cols.padded), dtype=x.dtype)
    buffer[..., rows.padding:rows.padding + rows.size, cols.padding:cols.padding + cols.size] = x
    return buffer


def _crop(buffer: np.ndarray, rows: _Axis, cols: _Axis) -> np.ndarray:
    """The input-sized part of a padded buffer, as a fresh contiguous array."""
    return np.ascontiguousarray(
        buffer[..., rows.padding:rows.padding + rows.size, cols.padding:cols.padding + cols.size]
    )


def pooling_input(x: Any) -> np.ndarray:
    """``x`` as a pooling layer's input array, after checking it like every pooling forward.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Any number (at least one) of leading axes before the two spatial ones.

    Returns
    -------
    ndarray
        ``np.asarray(x)``, not copied.

    Raises
    ------
    TypeError
        If the dtype is not float32 or float64.
    ValueError
        If ``x`` has fewer than three axes.
    """
    array = np.asarray(x)
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"expected a float32 or float64 array, got {array.dtype}")
    if array.ndim < 3:
        raise ValueError(f"expected an (N, C, H, W) array, got shape {array.shape}")
    return array


def _window_copy(buffer: np.ndarray, rows: _Axis, cols: _Axis) -> np.ndarray:
    """Every pooling window of a padded buffer, copied once: (B, kh*kw, H_out*W_out)."""
    planes = int(np.prod(buffer.shape[:-2]))
    flat = buffer.reshape((planes,) + buffer.shape[-2:])
    extent = (rows.dilation * (rows.kernel - 1) + 1, cols.dilation * (cols.kernel - 1) + 1)
    windows = sliding_window_view(flat, extent, axis=(1, 2))
    windows = windows[:, : (rows.out - 1) * rows.stride + 1 : rows.stride,
                      : (cols.out - 1) * cols.stride + 1 : cols.stride,
                      :: rows.dilation, :: cols.dilation]
    copied = np.empty((planes, rows.kernel, cols.kernel, rows.out, cols.out), dtype=buffer.dtype)
    np.copyto(copied, windows.transpose(0, 3, 4, 1, 2))  # output rows stay innermost
    return copied.reshape(planes, rows.kernel * cols.kernel, rows.out * cols.out)


def _needs_buffer(rows: _Axis, cols: _Axis) -> bool:
    """Whether windows reach padding or a ceil_mode overhang (else the input itself is the buffer)."""
    return any(axis.padding or axis.padded != axis.size for axis in (rows, cols))
