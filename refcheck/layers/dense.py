"""Dense layers in numpy: ``linear`` and ``flatten``, forward and backward.

Each layer is a pair of pure functions following the implementation contract:
``<layer>_forward(...) -> (out, cache)`` and ``<layer>_backward(dout, cache) -> gradients``.
Arrays use torch's layouts (a linear weight is ``(out_features, in_features)``) and the
results keep the dtype of the input.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "flatten_backward",
    "flatten_forward",
    "linear_backward",
    "linear_forward",
]


def linear_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Affine map ``out = x @ weight.T + bias`` over the last axis (``torch.nn.functional.linear``).

    Parameters
    ----------
    x : ndarray of shape (N, *, in_features)
        Input; any number of leading axes (including none) is accepted.
    weight : ndarray of shape (out_features, in_features)
    bias : ndarray of shape (out_features,) or None

    Returns
    -------
    out : ndarray of shape (N, *, out_features)
        Same leading axes as ``x``, dtype of ``x``.
    cache : tuple
        What :func:`linear_backward` needs.
    """
    x = np.asarray(x)
    weight = np.asarray(weight)
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: x {x.shape} and weight {weight.shape} are incompatible; "
            "expected x (..., in_features) and weight (out_features, in_features)"
        )
    if bias is not None:
        bias = np.asarray(bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias {bias.shape} should be ({weight.shape[0]},)")
    out = np.matmul(x, weight.T)
    if bias is not None:
        out = out + bias
    return out.astype(x.dtype, copy=False), (x, weight, bias)


def linear_backward(
    dout: np.ndarray, cache: tuple[Any, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`linear_forward`.

    Parameters
    ----------
    dout : ndarray of shape (N, *, out_features)
        Upstream gradient, same shape as the forward output.
    cache : tuple
        From :func:`linear_forward`.

    Returns
    -------
    grad_x : ndarray of shape (N, *, in_features)
        ``dout @ weight``.
    grad_weight : ndarray of shape (out_features, in_features)
        ``dout.T @ x`` with all leading axes folded into one.
    grad_bias : ndarray of shape (out_features,) or None
        ``dout`` summed over the leading axes; None when the forward had no bias.
    """
    x, weight, bias = cache
    dout = np.asarray(dout, dtype=x.dtype)
    in_features, out_features = weight.shape[1], weight.shape[0]
    # Fold every leading axis into one so that the weight gradient is a single matrix product.
    dout_rows = dout.reshape(-1, out_features)
    x_rows = x.reshape(-1, in_features)
    grad_x = np.matmul(dout, weight).astype(x.dtype, copy=False)
    grad_weight = np.matmul(dout_rows.T, x_rows).astype(weight.dtype, copy=False)
    grad_bias = None if bias is None else dout_rows.sum(axis=0).astype(bias.dtype, copy=False)
    return grad_x, grad_weight, grad_bias


def _normalize_dim(dim: int, ndim: int, name: str) -> int:
    """Map a possibly negative axis to ``[0, ndim)`` with torch's range check."""
    if not -ndim <= dim < ndim:
        raise IndexError(
            f"flatten: {name}={dim} is out of range (expected to be in range of "
            f"[{-ndim}, {ndim - 1}])"
        )
    return dim % ndim


def flatten_forward(
    x: np.ndarray, *, start_dim: int, end_dim: int
) -> tuple[np.ndarray, tuple[tuple[int, ...], np.dtype]]:
    """Merge axes ``start_dim..end_dim`` (inclusive) into one, as ``torch.flatten``.

    Parameters
    ----------
    x : ndarray of any shape
        A 0-d input is treated as shape (1,), like torch, and comes out with shape (1,).
    start_dim, end_dim : int
        First and last axis to merge; negative values count from the end.
        ``start_dim`` must not come after ``end_dim``.

    Returns
    -------
    out : ndarray
        Shape ``x.shape[:start] + (prod(x.shape[start:end + 1]),) + x.shape[end + 1:]``;
        a fresh array (never a view of ``x``).
    cache : tuple
        The input shape and dtype, which is all the backward needs.
    """
    x = np.asarray(x)
    shape = x.shape if x.ndim > 0 else (1,)
    start = _normalize_dim(start_dim, len(shape), "start_dim")
    end = _normalize_dim(end_dim, len(shape), "end_dim")
    if start > end:
        raise ValueError(
            f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})"
        )
    merged = int(np.prod(shape[start : end + 1], dtype=np.int64))
    out_shape = shape[:start] + (merged,) + shape[end + 1 :]
    # Copy so that writing into the output can never alter the caller's input.
    return x.reshape(out_shape).copy(), (x.shape, x.dtype)


def flatten_backward(
    dout: np.ndarray, cache: tuple[tuple[int, ...], np.dtype]
) -> np.ndarray:
    """Gradient of :func:`flatten_forward`: ``dout`` reshaped back to the input shape.

    Parameters
    ----------
    dout : ndarray
        Upstream gradient, shape of the forward output.
    cache : tuple
        The input shape and dtype recorded by :func:`flatten_forward`.

    Returns
    -------
    grad_x : ndarray with the input's shape
    """
    input_shape, dtype = cache
    return np.array(dout, dtype=dtype).reshape(input_shape)
