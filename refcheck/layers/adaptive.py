"""Vectorised numpy adaptive 2-D pooling that reproduces ``torch.nn.functional`` on CPU.

Layers: ``adaptive_avg_pool2d`` and ``adaptive_max_pool2d``, each as ``*_forward(x, *,
output_size)`` returning ``(out, cache)`` and ``*_backward(dout, cache)`` returning ``dx``.

Along an axis of input length ``L`` pooled to ``n`` outputs, window ``i`` spans input
indices ``[floor(i * L / n), ceil((i + 1) * L / n))``. Windows may overlap (when ``n`` does
not divide ``L``) and have unequal lengths; when ``n > L`` several windows share an element.
Both layers are separable: the average is ``A_h @ x @ A_w.T``, and the maximum is taken over the
row windows first, then over the column windows (equal, disjoint windows in one reduction).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from refcheck.layers.pooling import first_max, pooling_input, update_first_max

__all__ = [
    "adaptive_windows",
    "adaptive_avg_pool2d_forward",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d_forward",
    "adaptive_max_pool2d_backward",
]


def adaptive_windows(size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) input index of every adaptive window.

    Parameters
    ----------
    size : int
        Input length ``L >= 1``.
    out_size : int
        Number of windows ``n >= 1``.

    Returns
    -------
    starts, ends : ndarray of int64, shape (n,)
        ``starts[i] = floor(i * L / n)``, ``ends[i] = ceil((i + 1) * L / n)``.
    """
    if size < 1 or out_size < 1:
        raise ValueError(f"adaptive pooling needs positive sizes, got {size} -> {out_size}")
    index = np.arange(out_size, dtype=np.int64)
    starts = (index * size) // out_size
    ends = -((-(index + 1) * size) // out_size)  # ceil division on integers
    return starts, ends


def _averaging_matrix(size: int, out_size: int, dtype: Any) -> np.ndarray:
    """Matrix ``A`` (n, L) with ``A[i, j] = 1 / len(window i)`` for ``j`` in window ``i``."""
    starts, ends = adaptive_windows(size, out_size)
    index = np.arange(size)
    inside = (index[None, :] >= starts[:, None]) & (index[None, :] < ends[:, None])
    return (inside / (ends - starts)[:, None]).astype(dtype)


def adaptive_avg_pool2d_forward(
    x: np.ndarray, *, output_size: tuple[int, int]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adaptive average pooling, ``torch.nn.functional.adaptive_avg_pool2d``.

    The window mean is separable, so ``out = A_h @ x @ A_w.T`` with the averaging matrices
    of :func:`_averaging_matrix`.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    output_size : (int, int)
        ``(H_out, W_out)``.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    cache : dict
    """
    x = pooling_input(x)
    rows = _averaging_matrix(x.shape[-2], output_size[0], x.dtype)
    cols = _averaging_matrix(x.shape[-1], output_size[1], x.dtype)
    return _separable(x, rows, cols), {"rows": rows, "cols": cols, "dtype": x.dtype}


def _separable(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``rows @ x @ cols.T`` for every (H, W) plane of ``x``.

    Parameters
    ----------
    x : ndarray, shape (..., H, W)
    rows : ndarray, shape (R, H)
    cols : ndarray, shape (Q, W)

    Returns
    -------
    ndarray, shape (..., R, Q)
    """
    if rows.shape[0] == 1 and cols.shape[0] == 1:
        # Global pooling (1x1 output): every weight is 1/H * 1/W, so one contiguous sum per plane.
        lead, (height, width) = x.shape[:-2], x.shape[-2:]
        flat = np.ascontiguousarray(x).reshape(lead + (height * width,))
        return (flat.sum(axis=-1) * (rows[0, 0] * cols[0, 0]))[..., None, None]
    return rows @ x @ cols.T


def adaptive_avg_pool2d_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d_forward`: ``dx = A_h.T @ dout @ A_w``.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H_out, W_out)
    cache : dict from the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    dout = np.asarray(dout, dtype=cache["dtype"])
    rows, cols = cache["rows"], cache["cols"]
    if rows.shape[0] == 1 and cols.shape[0] == 1:  # global pooling: dout spread evenly
        return dout * np.outer(rows[0], cols[0])
    return _separable(dout, rows.T, cols.T)


def adaptive_max_pool2d_forward(
    x: np.ndarray, *, output_size: tuple[int, int]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adaptive max pooling, ``torch.nn.functional.adaptive_max_pool2d``.

    The window maximum is separable (:func:`_separable_first_max`): the maximum over each row
    window, per input column, with the FIRST row reaching it, then the maximum of those over each
    column window, taking among the columns that reach it the smallest ``row * W + column``. That
    is the first maximum of the 2-D window in row-major order (ties keep the first, like torch).
    Inputs holding NaN take torch's scan, where the last NaN wins.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    output_size : (int, int)
        ``(H_out, W_out)``.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    cache : dict
        Flat index ``h * W + w`` of each window's selected element.
    """
    x = pooling_input(x)
    row_starts, row_ends = adaptive_windows(x.shape[-2], output_size[0])
    col_starts, col_ends = adaptive_windows(x.shape[-1], output_size[1])
    if np.isnan(x).any():
        best_value, best_flat = _adaptive_max_scan(x, row_starts, row_ends, col_starts, col_ends)
    else:
        best_value, best_flat = _separable_first_max(x, row_starts, row_ends, col_starts, col_ends)
    return best_value, {"best_flat": best_flat, "shape": x.shape, "dtype": x.dtype}


def _separable_first_max(
    x: np.ndarray, row_starts: np.ndarray, row_ends: np.ndarray, col_starts: np.ndarray,
    col_ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum of every adaptive window of a NaN-free input and the flat index of its first maximum.

    Returns
    -------
    best : ndarray, shape (..., H_out, W_out)
    best_flat : ndarray of int64, same shape: smallest ``h * W + w`` with ``x[..., h, w] == best``
        inside the window.
    """
    height, width = x.shape[-2:]
    out_h, out_w = len(row_starts), len(col_starts)
    planes = int(np.prod(x.shape[:-2]))
    # Rows outermost, (plane, column) pairs innermost: a row window is one contiguous block.
    by_rows = np.ascontiguousarray(x.reshape(planes, height, width).transpose(1, 0, 2))
    # Stage 1, per row window and (plane, column): the maximum over the window's rows and the
    # first row reaching it.
    if height % out_h == 0:  # equal, disjoint row windows: one reduction over all of them
        length = height // out_h
        value, row = first_max(by_rows.reshape(out_h, length, planes * width))
        col_best = value.reshape(out_h, planes, width)
        col_key = (row.reshape(out_h, planes, width) + row_starts[:, None, None]) * width
    else:
        col_best = np.empty((out_h, planes, width), dtype=x.dtype)
        col_key = np.empty((out_h, planes, width), dtype=np.int64)
        for oh, (start, end) in enumerate(zip(row_starts.tolist(), row_ends.tolist())):
            value, row = first_max(by_rows[start:end].reshape(1, end - start, planes * width))
            col_best[oh] = value.reshape(planes, width)
            col_key[oh] = (row.reshape(planes, width) + start) * width
    col_key += np.arange(width)  # flat index of each column's first maximum
    # Stage 2, per column window: the maximum over its columns and, among the columns reaching
    # it, the smallest flat index (rows weigh W each: the first in row-major order). Slot q of
    # window ow reads column min(start + q, end - 1): short windows repeat their last column,
    # which changes neither the maximum nor the smallest index.
    if width % out_w == 0:  # equal, disjoint column windows: slot q is every length-th column
        length = width // out_w

        def slot(values: np.ndarray, q: int) -> np.ndarray:
            return values[:, :, q::length]
    else:
        starts, ends = col_starts.tolist(), col_ends.tolist()
        length = max(end - start for start, end in zip(starts, ends))
        columns = [np.minimum(col_starts + q, col_ends - 1) for q in range(length)]

        def slot(values: np.ndarray, q: int) -> np.ndarray:
            return np.take(values, columns[q], axis=2)

    best = slot(col_best, 0).copy()
    for q in range(1, length):
        np.maximum(best, slot(col_best, q), out=best)
    beyond = height * width  # larger than every flat index
    best_flat = np.full(best.shape, beyond, dtype=np.int64)
    for q in range(length):
        hits = slot(col_best, q) == best
        np.minimum(best_flat, np.where(hits, slot(col_key, q), beyond), out=best_flat)
    out_shape = x.shape[:-2] + (out_h, out_w)
    return (np.ascontiguousarray(best.transpose(1, 0, 2)).reshape(out_shape),
            np.ascontiguousarray(best_flat.transpose(1, 0, 2)).reshape(out_shape))


def _adaptive_max_scan(
    x: np.ndarray, row_starts: np.ndarray, row_ends: np.ndarray, col_starts: np.ndarray,
    col_ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """torch's row-major scan of every window (used when NaN is present: the last NaN wins)."""
    height, width = x.shape[-2:]
    out_shape = x.shape[:-2] + (len(row_starts), len(col_starts))
    best_value = np.full(out_shape, -np.inf, dtype=x.dtype)
    best_flat = np.full(out_shape, -1, dtype=np.int64)
    for row_offset in range(int((row_ends - row_starts).max())):
        rows = row_starts + row_offset
        row_valid = rows < row_ends
        rows = np.minimum(rows, height - 1)  # keep the masked slots indexable
        for col_offset in range(int((col_ends - col_starts).max())):
            cols = col_starts + col_offset
            col_valid = cols < col_ends
            cols = np.minimum(cols, width - 1)
            candidate = x[..., rows[:, None], cols[None, :]]
            flat = rows[:, None] * width + cols[None, :]
            best_value, best_flat = update_first_max(
                best_value, best_flat, candidate, row_valid[:, None] & col_valid[None, :], flat
            )
    return best_value, best_flat


def adaptive_max_pool2d_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool2d_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H_out, W_out)
    cache : dict from the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        Each window sends ``dout`` to its selected element; windows sharing an element
        accumulate (unbuffered ``np.add.at``, since indices repeat). Disjoint windows (the output
        size divides the input size, or is 1) select distinct elements: a plain assignment.
    """
    shape, dtype = cache["shape"], cache["dtype"]
    best_flat = cache["best_flat"]
    dout = np.asarray(dout, dtype=dtype)
    if dout.shape != best_flat.shape:
        raise ValueError(f"dout has shape {dout.shape}, expected {best_flat.shape}")
    planes = int(np.prod(shape[:-2]))
    plane_size = shape[-2] * shape[-1]
    windows = best_flat.shape[-2] * best_flat.shape[-1]  # spelled out: -1 fails on an empty batch
    target = best_flat.reshape(planes, windows) + (np.arange(planes) * plane_size)[:, None]
    grad = np.zeros(planes * plane_size, dtype=dtype)
    disjoint = all(
        bool(np.all(starts[1:] >= ends[:-1]))
        for starts, ends in (adaptive_windows(size, out) for size, out in zip(shape[-2:], best_flat.shape[-2:]))
    )
    if disjoint:
        grad[target.ravel()] = dout.ravel()
    else:
        np.add.at(grad, target.ravel(), dout.ravel())
    return grad.reshape(shape)
