"""Vectorised numpy 2-D pooling layers that reproduce ``torch.nn.functional`` on CPU.

Layers: ``max_pool2d`` and ``avg_pool2d`` (``lp_pool2d`` in :mod:`.lp_pooling`, built on them), each as a ``*_forward(x, *, ...)``
returning ``(out, cache)`` and a ``*_backward(dout, cache)`` returning ``dx``.  Inputs are
``(N, C, H, W)`` arrays (any number of leading axes works); outputs and gradients keep the
input's dtype and are computed at that precision.

Output size (per spatial axis, torch's ``pooling_output_shape``), with input size ``L``,
kernel ``k``, stride ``s``, padding ``p``, dilation ``d`` and effective kernel
``e = d * (k - 1) + 1``::

    ceil_mode=False:  out = floor((L + 2p - e) / s) + 1
    ceil_mode=True:   out = ceil((L + 2p - e) / s) + 1, minus one if the last window would
                      start at or beyond L + p in padded coordinates, i.e. inside the right
                      padding; every window therefore starts inside the input or the left
                      padding.

With ``ceil_mode`` the last window may hang past the padded input (it may even be larger than
the whole input when ``L + 2p < e < L + 2p + s``); the overhanging part is ignored.

The implementation loops over the ``kh * kw`` kernel offsets only; each offset is a strided
view of a padded copy of the input covering every output pixel at once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "pool_output_size",
    "pooling_input",
    "update_first_max",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
]


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


def _scatter_to_input(
    contribution: Callable[[int], np.ndarray], cache: dict[str, Any]
) -> np.ndarray:
    """Input gradient from per-window gradients: the adjoint of reading the windows.

    ``contribution(offset)`` is the gradient, shape (N, C, H_out, W_out), that every window
    sends to its element at kernel offset ``offset = i * kw + j``; the sum lands on the input
    positions those elements occupy, shape (N, C, H, W) (padding is dropped).
    """
    rows, cols = cache["rows"], cache["cols"]
    grad = np.zeros(cache["shape"][:-2] + (rows.padded, cols.padded), dtype=cache["dtype"])
    for i in range(rows.kernel):
        for j in range(cols.kernel):
            # Within one offset, distinct windows hit distinct positions, so += is safe;
            # gradient landing on padding is cropped away below.
            grad[..., rows.slices[i], cols.slices[j]] += contribution(i * cols.kernel + j)
    return _crop(grad, rows, cols)


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


def update_first_max(
    best_value: np.ndarray,
    best_index: np.ndarray,
    candidate: np.ndarray,
    valid: np.ndarray,
    index: int | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One step of torch's max-pooling scan over a window, for all windows at once.

    Window elements must be visited in row-major order. ``best_index < 0`` marks windows that
    have not seen a real (non-padding) element yet: the first real element is taken
    unconditionally, as torch initialises its argmax to the first in-bounds element, so a
    window of ``-inf`` values routes its gradient there, never to padding. Afterwards an
    element replaces the running maximum when strictly greater (ties keep the FIRST maximum)
    or when it is NaN (so the LAST NaN wins and NaN propagates).
    """
    take = valid & ((best_index < 0) | (candidate > best_value) | np.isnan(candidate))
    return np.where(take, candidate, best_value), np.where(take, index, best_index)


def max_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool,
) -> tuple[np.ndarray, dict[str, Any]]:
    """2-D max pooling, ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size, stride, padding, dilation : (int, int)
        Per-axis hyperparameters; ``padding <= kernel // 2`` and ``<= effective_kernel // 2``.
    ceil_mode : bool
        See the module docstring for the output-size rule.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
        ``H_out = pool_output_size(H, kh, sh, ph, dh, ceil_mode)``, likewise ``W_out``.
        Padding behaves as ``-inf``: it never wins, not even against ``-inf`` inputs.
    cache : dict
        Kernel offset of each window's maximum (first maximum in row-major order on ties,
        last NaN if any) and the geometry.
    """
    x = pooling_input(x)
    rows, cols = _axes(x, kernel_size, stride, padding, dilation, ceil_mode)
    buffer = _zero_padded(x, rows, cols)
    out_shape = x.shape[:-2] + (rows.out, cols.out)
    best_value = np.full(out_shape, -np.inf, dtype=x.dtype)
    best_offset = np.full(out_shape, -1, dtype=np.int64)
    for i in range(rows.kernel):
        for j in range(cols.kernel):
            valid = rows.valid[i][:, None] & cols.valid[j][None, :]
            candidate = buffer[..., rows.slices[i], cols.slices[j]]
            best_value, best_offset = update_first_max(
                best_value, best_offset, candidate, valid, i * cols.kernel + j
            )
    cache = {"best_offset": best_offset, "rows": rows, "cols": cols,
             "shape": x.shape, "dtype": x.dtype}
    return best_value, cache


def max_pool2d_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Gradient of :func:`max_pool2d_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H_out, W_out)
    cache : dict from the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        Each window sends ``dout`` to its selected element; overlapping windows accumulate.
    """
    dout = np.asarray(dout, dtype=cache["dtype"])
    best_offset = cache["best_offset"]
    return _scatter_to_input(lambda offset: np.where(best_offset == offset, dout, 0), cache)


def _avg_divisor(
    rows: _Axis, cols: _Axis, count_include_pad: bool, divisor_override: int | None, dtype: Any
) -> np.ndarray:
    """Per-window divisor (H_out, W_out) following torch's CPU avg_pool2d kernel."""
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("divisor_override must be non-zero")
        return np.full((rows.out, cols.out), divisor_override, dtype=dtype)
    if count_include_pad:
        counts = rows.window_full[:, None] * cols.window_full[None, :]
    else:
        counts = rows.window_clipped[:, None] * cols.window_clipped[None, :]
    return counts.astype(dtype)


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """2-D average pooling, ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size, stride, padding : (int, int)
        ``padding <= kernel // 2``.
    ceil_mode : bool
        See the module docstring for the output-size rule (dilation 1).
    count_include_pad : bool
        Divisor counts zero padding; the part of a ceil_mode window that hangs past the
        right padding never counts. Otherwise only real input elements count.
    divisor_override : int or None
        If given, every window sum is divided by it instead.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
        Window sum over real input elements divided by the divisor.
    cache : dict
    """
    x = pooling_input(x)
    rows, cols = _axes(x, kernel_size, stride, padding, (1, 1), ceil_mode)
    buffer = _zero_padded(x, rows, cols)
    total = np.zeros(x.shape[:-2] + (rows.out, cols.out), dtype=x.dtype)
    for i in range(rows.kernel):
        for j in range(cols.kernel):
            total += buffer[..., rows.slices[i], cols.slices[j]]  # zero padding adds nothing
    divisor = _avg_divisor(rows, cols, count_include_pad, divisor_override, x.dtype)
    cache = {"divisor": divisor, "rows": rows, "cols": cols, "shape": x.shape, "dtype": x.dtype}
    return total / divisor, cache


def avg_pool2d_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Gradient of :func:`avg_pool2d_forward`: ``dout / divisor`` spread over each window.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H_out, W_out)
    cache : dict from the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    share = np.asarray(dout, dtype=cache["dtype"]) / cache["divisor"]
    return _scatter_to_input(lambda offset: share, cache)
