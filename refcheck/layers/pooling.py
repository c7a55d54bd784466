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

Implementation. max_pool2d copies every window once, kernel offset next to the batch-channel
axis, and takes the maximum and the FIRST offset reaching it with reductions over that axis
(:func:`first_max`); the backward routes ``dout`` to those elements (plain assignment when windows
cannot overlap, an unbuffered add where they may). Inputs holding NaN take torch's scan instead
(:func:`update_first_max` over the kernel offsets), as there the LAST NaN wins. avg_pool2d sums
windows separably, rows then columns (``kh + kw`` strided passes instead of ``kh * kw``), and
non-overlapping windows (stride == kernel, no padding) by reshape-and-sum.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "pool_output_size",
    "pooling_input",
    "update_first_max",
    "first_max",
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


def first_max(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum over axis 1 and the FIRST index reaching it, for NaN-free windows.

    Parameters
    ----------
    windows : ndarray, shape (B, K, P)
        ``K`` window elements (in scan order) of ``B * P`` windows.

    Returns
    -------
    best : ndarray, shape (B, P)
    index : ndarray of int64, shape (B, P)
        Smallest ``k`` with ``windows[b, k, p] == best[b, p]``: ties keep the first maximum.
    """
    count = windows.shape[1]
    best = windows.max(axis=1)
    hits = windows == best[:, None, :]
    # The first hit is the one with the largest "count - k"; a max over the small-int axis finds it
    # without numpy's per-window argmax loop.
    rank = np.arange(count, 0, -1, dtype=np.uint8 if count < 256 else np.int64)
    index = count - (hits * rank[None, :, None]).max(axis=1).astype(np.int64)
    return best, index


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


def _disjoint_tiles(rows: _Axis, cols: _Axis) -> bool:
    """Windows tile the input without gaps, overlap or padding (stride == kernel, dilation 1)."""
    return all(
        axis.stride == axis.kernel and axis.dilation == 1 and axis.padding == 0
        and axis.out * axis.kernel <= axis.size
        for axis in (rows, cols)
    )


def _needs_buffer(rows: _Axis, cols: _Axis) -> bool:
    """Whether windows reach padding or a ceil_mode overhang (else the input itself is the buffer)."""
    return any(axis.padding or axis.padded != axis.size for axis in (rows, cols))


def _first_valid_offset(rows: _Axis, cols: _Axis) -> np.ndarray:
    """Kernel offset (H_out, W_out) of the first real input element of each window, row-major."""
    first_row = np.argmax(np.stack(rows.valid), axis=0)
    first_col = np.argmax(np.stack(cols.valid), axis=0)
    return first_row[:, None] * cols.kernel + first_col[None, :]


def _max_pool_scan(
    x: np.ndarray, rows: _Axis, cols: _Axis
) -> tuple[np.ndarray, np.ndarray]:
    """torch's scan over the kernel offsets (used when NaN is present: the last NaN wins)."""
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
    return best_value, best_offset


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
    if np.isnan(x).any():
        best_value, best_offset = _max_pool_scan(x, rows, cols)
    else:
        if _needs_buffer(rows, cols):
            # -inf padding never wins against a real element, except against -inf itself.
            buffer = np.full(x.shape[:-2] + (rows.padded, cols.padded), -np.inf, dtype=x.dtype)
            buffer[..., rows.padding:rows.padding + rows.size,
                   cols.padding:cols.padding + cols.size] = x
        else:
            buffer = x
        best_value, best_offset = first_max(_window_copy(buffer, rows, cols))
        if _needs_buffer(rows, cols):
            # A window of -inf inputs ties with its padding: torch keeps its first REAL element.
            all_minus_inf = best_value == -np.inf
            if all_minus_inf.any():
                fallback = np.broadcast_to(_first_valid_offset(rows, cols).ravel(), best_offset.shape)
                best_offset = np.where(all_minus_inf, fallback, best_offset)
        out_shape = x.shape[:-2] + (rows.out, cols.out)
        best_value, best_offset = best_value.reshape(out_shape), best_offset.reshape(out_shape)
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
    if dout.shape != cache["best_offset"].shape:
        raise ValueError(f"dout has shape {dout.shape}, expected {cache['best_offset'].shape}")
    rows, cols = cache["rows"], cache["cols"]
    best_offset = cache["best_offset"].reshape(-1, rows.out, cols.out)
    planes = best_offset.shape[0]
    # Padded position of each window's selected element, flattened over (plane, row, column).
    row = np.arange(rows.out)[:, None] * rows.stride + (best_offset // cols.kernel) * rows.dilation
    col = np.arange(cols.out)[None, :] * cols.stride + (best_offset % cols.kernel) * cols.dilation
    plane = np.arange(planes)[:, None, None] * (rows.padded * cols.padded)
    target = (plane + row * cols.padded + col).ravel()
    grad = np.zeros(planes * rows.padded * cols.padded, dtype=cache["dtype"])
    overlapping = any(
        axis.stride < axis.dilation * (axis.kernel - 1) + 1 for axis in (rows, cols)
    )
    if overlapping:  # several windows may select one element: unbuffered accumulation
        np.add.at(grad, target, dout.ravel())
    else:  # windows are disjoint, so every target is distinct
        grad[target] = dout.ravel()
    grad = grad.reshape(cache["shape"][:-2] + (rows.padded, cols.padded))
    return _crop(grad, rows, cols)


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
    if _disjoint_tiles(rows, cols):
        # stride == kernel, no padding: the windows tile the input; reshape and sum.
        # (numpy reduces a short LAST axis slowly, so the kernel columns are added as slices.)
        tiles = x[..., : rows.out * rows.kernel, : cols.out * cols.kernel].reshape(
            x.shape[:-2] + (rows.out, rows.kernel, cols.out, cols.kernel)
        )
        row_sums = tiles.sum(axis=-3)  # (..., H_out, W_out, kw)
        total = row_sums[..., 0].copy()
        for j in range(1, cols.kernel):
            total += row_sums[..., j]
    else:
        # The window sum is separable: sum the kernel rows, then the kernel columns.
        buffer = _zero_padded(x, rows, cols) if _needs_buffer(rows, cols) else x
        row_sums = buffer[..., rows.slices[0], :].copy()
        for i in range(1, rows.kernel):
            row_sums += buffer[..., rows.slices[i], :]  # zero padding adds nothing
        total = row_sums[..., cols.slices[0]].copy()
        for j in range(1, cols.kernel):
            total += row_sums[..., cols.slices[j]]
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
    rows, cols = cache["rows"], cache["cols"]
    lead = share.shape[:-2]
    if _disjoint_tiles(rows, cols):
        grad = np.zeros(cache["shape"], dtype=cache["dtype"])
        tiles = grad[..., : rows.out * rows.kernel, : cols.out * cols.kernel].reshape(
            lead + (rows.out, rows.kernel, cols.out, cols.kernel)
        )  # a view when the input is tiled exactly, else written back below
        for j in range(cols.kernel):
            tiles[..., j] = share[..., :, None, :]
        grad[..., : rows.out * rows.kernel, : cols.out * cols.kernel] = tiles.reshape(
            lead + (rows.out * rows.kernel, cols.out * cols.kernel)
        )
        return grad
    # Adjoint of the separable sum: spread over the kernel columns, then over the kernel rows.
    spread = np.zeros(lead + (rows.out, cols.padded), dtype=cache["dtype"])
    for j in range(cols.kernel):
        spread[..., cols.slices[j]] += share
    grad = np.zeros(lead + (rows.padded, cols.padded), dtype=cache["dtype"])
    for i in range(rows.kernel):
        grad[..., rows.slices[i], :] += spread
    return _crop(grad, rows, cols)
