"""Shared pieces of the normalisation layers: standardisation over axes and its backward, the
affine map, the running-statistics update (see :mod:`refcheck.layers.normalization`)."""
from __future__ import annotations

import numpy as np

__all__: list[str] = []

Axes = tuple[int, ...]


# --- shared pieces ---------------------------------------------------------------------------

def _floating(x: np.ndarray, layer: str) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{layer}: input must be a floating-point array, got {x.dtype}")
    return x


def _optional(
    array: np.ndarray | None, shape: tuple[int, ...], name: str, layer: str
) -> np.ndarray | None:
    """``array`` as an ndarray of exactly ``shape``, or None."""
    if array is None:
        return None
    array = np.asarray(array)
    if array.shape != shape:
        raise ValueError(f"{layer}: {name} has shape {array.shape}, expected {shape}")
    return array


def _standardize(
    x: np.ndarray, axes: Axes, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(xhat, inv_std, mean, var)`` over ``axes``; statistics keep their axes (size 1).

    The variance is the biased one (divided by the count), computed from the centred values
    (two passes), which stays accurate for near-constant groups.
    """
    dtype = x.dtype
    mean = np.mean(x, axis=axes, keepdims=True, dtype=dtype)
    centered = x - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True, dtype=dtype)
    inv_std = dtype.type(1) / np.sqrt(var + dtype.type(eps))
    return centered * inv_std, inv_std, mean, var


def _standardize_backward(
    grad_xhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, axes: Axes
) -> np.ndarray:
    """Gradient through ``xhat = (x - mean(x)) * inv_std(x)`` over ``axes``.

    ``inv_std * (g - mean(g) - xhat * mean(g * xhat))``: the ``mean(g)`` term is the path
    through the mean, the last one the path through the variance.
    """
    dtype = xhat.dtype
    mean_grad = np.mean(grad_xhat, axis=axes, keepdims=True, dtype=dtype)
    mean_grad_xhat = np.mean(grad_xhat * xhat, axis=axes, keepdims=True, dtype=dtype)
    return inv_std * (grad_xhat - mean_grad - xhat * mean_grad_xhat)


def _affine(
    xhat: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
    param_shape: tuple[int, ...],
) -> np.ndarray:
    """``xhat * weight + bias`` with the parameters reshaped to broadcast; a fresh array."""
    out = xhat if weight is None else xhat * weight.reshape(param_shape)
    if bias is not None:
        out = out + bias.reshape(param_shape)
    # A copy when there is no affine map, so that out never aliases the cached xhat.
    return out.astype(xhat.dtype, copy=out is xhat)


def _affine_backward(
    dout: np.ndarray, xhat: np.ndarray, weight: np.ndarray | None, has_bias: bool,
    param_shape: tuple[int, ...], reduce_axes: Axes,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(grad_xhat, grad_weight, grad_bias)``.

    The parameter gradients sum over ``reduce_axes``, every axis the parameters broadcast
    along, which leaves exactly the parameters' own shape.
    """
    dtype = xhat.dtype
    grad_xhat = dout if weight is None else dout * weight.reshape(param_shape).astype(dtype)
    grad_weight = grad_bias = None
    if weight is not None:
        grad_weight = np.sum(dout * xhat, axis=reduce_axes, dtype=dtype)
    if has_bias:
        grad_bias = np.sum(dout, axis=reduce_axes, dtype=dtype)
    return grad_xhat, grad_weight, grad_bias


def _channel_param_shape(x: np.ndarray) -> tuple[int, ...]:
    """``(1, C, 1, ..., 1)``: per-channel parameters broadcast over an (N, C, *) input."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _running_update(
    running: np.ndarray | None, batch: np.ndarray, momentum: float
) -> np.ndarray | None:
    """``(1 - momentum) * running + momentum * batch`` in the running statistic's dtype."""
    if running is None:
        return None
    dtype = running.dtype
    batch = batch.astype(dtype, copy=False)
    return (dtype.type(1 - momentum) * running + dtype.type(momentum) * batch).astype(dtype)


def _eval_standardize(
    x: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray, eps: float,
    param_shape: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """``(xhat, inv_std)`` with the given running statistics in place of the batch's."""
    dtype = x.dtype
    mean = running_mean.reshape(param_shape).astype(dtype, copy=False)
    var = running_var.reshape(param_shape).astype(dtype, copy=False)
    inv_std = dtype.type(1) / np.sqrt(var + dtype.type(eps))
    return (x - mean) * inv_std, inv_std
