"""Vectorised numpy adaptive 2-D pooling that reproduces ``torch.nn.functional`` on CPU.

Layers: ``adaptive_avg_pool2d`` and ``adaptive_max_pool2d``, each as ``*_forward(x, *,
output_size)`` returning ``(out, cache)`` and ``*_backward(dout, cache)`` returning ``dx``.

Along an axis of input length ``L`` pooled to ``n`` outputs, window ``i`` spans input
indices ``[floor(i * L / n), ceil((i + 1) * L / n))``. Windows may overlap (when ``n`` does
not divide ``L``) and have unequal lengths; when ``n > L`` several windows share an element.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from refcheck.layers.pooling import pooling_input, update_first_max

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
    out = rows @ x @ cols.T
    return out, {"rows": rows, "cols": cols, "dtype": x.dtype}


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
    return cache["rows"].T @ dout @ cache["cols"]


def adaptive_max_pool2d_forward(
    x: np.ndarray, *, output_size: tuple[int, int]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adaptive max pooling, ``torch.nn.functional.adaptive_max_pool2d``.

    Windows have different lengths, so each is gathered through index arrays padded to the
    longest window; the padded slots are masked out. The scan visits window elements in
    row-major order and keeps the FIRST maximum on ties (last NaN if any), like torch.

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
    height, width = x.shape[-2:]
    row_starts, row_ends = adaptive_windows(height, output_size[0])
    col_starts, col_ends = adaptive_windows(width, output_size[1])
    out_shape = x.shape[:-2] + (output_size[0], output_size[1])
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
    return best_value, {"best_flat": best_flat, "shape": x.shape, "dtype": x.dtype}


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
        accumulate (unbuffered ``np.add.at``, since indices repeat).
    """
    shape, dtype = cache["shape"], cache["dtype"]
    best_flat = cache["best_flat"]
    dout = np.asarray(dout, dtype=dtype)
    planes = int(np.prod(shape[:-2]))
    plane_size = shape[-2] * shape[-1]
    target = best_flat.reshape(planes, -1) + (np.arange(planes) * plane_size)[:, None]
    grad = np.zeros(planes * plane_size, dtype=dtype)
    np.add.at(grad, target.ravel(), dout.ravel())
    return grad.reshape(shape)
