"""2-D max pooling, ``torch.nn.functional.max_pool2d``, forward and backward.

The forward copies every window once, kernel offset next to the batch-channel axis, and takes the
maximum and the FIRST offset reaching it with reductions over that axis (:func:`first_max`), a few
planes at a time so that the copy stays in cache; the backward routes ``dout`` to those elements (plain assignment when windows cannot overlap, an
unbuffered add where they may). Inputs holding NaN take torch's scan instead
(:func:`update_first_max` over the kernel offsets), as there the LAST NaN wins.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._pool_geometry import (
    _axes,
    _Axis,
    _crop,
    _needs_buffer,
    _window_copy,
    _zero_padded,
    pooling_input,
)

__all__ = ["first_max", "max_pool2d_backward", "max_pool2d_forward", "update_first_max"]

# Bytes of window copy per chunk of planes in the forward: small enough to stay in cache and be
# reused by the allocator (a fresh multi-megabyte copy per call costs page faults).
_CHUNK_BYTES = 2 * 1024 * 1024


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
        See :mod:`refcheck.layers.pooling` for the output-size rule.

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
        planes = int(np.prod(x.shape[:-2]))
        flat = x.reshape((planes,) + x.shape[-2:])
        best_value = np.empty((planes, rows.out * cols.out), dtype=x.dtype)
        best_offset = np.empty((planes, rows.out * cols.out), dtype=np.int64)
        # A few planes at a time, so that the window copy and its reductions stay in cache.
        step = max(1, _CHUNK_BYTES // (rows.kernel * cols.kernel * rows.out * cols.out * x.itemsize))
        for start in range(0, planes, step):
            part = flat[start : start + step]
            if _needs_buffer(rows, cols):
                # -inf padding never wins against a real element, except against -inf itself.
                buffer = np.full((len(part), rows.padded, cols.padded), -np.inf, dtype=x.dtype)
                buffer[:, rows.padding:rows.padding + rows.size, cols.padding:cols.padding + cols.size] = part
            else:
                buffer = part
            best_value[start : start + step], best_offset[start : start + step] = first_max(
                _window_copy(buffer, rows, cols)
            )
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
    # Padded position of each window's selected element, flattened over (plane, row, column): the
    # window's first element plus the displacement of the selected kernel offset (one lookup).
    displacement = (
        (np.arange(rows.kernel) * rows.dilation * cols.padded)[:, None]
        + np.arange(cols.kernel) * cols.dilation
    ).ravel()
    window_start = (
        np.arange(planes)[:, None, None] * (rows.padded * cols.padded)
        + (np.arange(rows.out) * rows.stride * cols.padded)[:, None]
        + np.arange(cols.out) * cols.stride
    )
    target = (np.take(displacement, best_offset) + window_start).ravel()
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
