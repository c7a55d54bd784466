"""Normalisation layers in numpy, forward and backward, with torch's semantics.

Layers: ``batch_norm``, ``layer_norm``, ``group_norm`` and ``instance_norm``. Each one
standardises ``x`` over a set of axes and then applies an optional per-feature affine map::

    mean = x.mean(axes)
    var = ((x - mean) ** 2).mean(axes)          # biased: divided by the count M, not M - 1
    xhat = (x - mean) / sqrt(var + eps)         # eps inside the square root
    out = xhat * weight + bias                  # weight and bias may each be None

- ``batch_norm``: statistics per channel over N and every spatial axis; weight/bias (C,).
- ``layer_norm``: statistics per leading index over the last ``len(normalized_shape)`` axes;
  weight/bias of shape ``normalized_shape``.
- ``group_norm``: statistics per sample over each group of C / G consecutive channels and every
  spatial axis; weight/bias (C,).
- ``instance_norm``: statistics per (sample, channel) over every spatial axis; weight/bias (C,).

Backward of the standardisation over a group of ``M`` elements (the full form, keeping the
term that comes from the mean depending on every input)::

    grad_x = inv_std * (g - mean(g) - xhat * mean(g * xhat)),   g = dout * weight

This module holds ``layer_norm`` and ``group_norm``; ``batch_norm`` and ``instance_norm``, whose
running statistics are explicit inputs and outputs, are in :mod:`refcheck.layers.norm_running`,
and the shared pieces in :mod:`refcheck.layers.norm_core`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .norm_core import (
    _affine,
    _affine_backward,
    _channel_param_shape,
    _floating,
    _optional,
    _standardize,
    _standardize_backward,
)

__all__ = [
    "group_norm_backward",
    "group_norm_forward",
    "layer_norm_backward",
    "layer_norm_forward",
]


# --- layer_norm ------------------------------------------------------------------------------

def _normalized_shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    shape = tuple(int(size) for size in normalized_shape)
    if not shape:
        raise ValueError("layer_norm: normalized_shape must name at least one axis")
    return shape


def layer_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    *,
    normalized_shape: int | Sequence[int],
    eps: float,
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Layer normalisation (``torch.nn.functional.layer_norm``) over the trailing axes.

    Parameters
    ----------
    x : ndarray of shape (*, *normalized_shape)
    weight, bias : ndarray of shape ``normalized_shape`` or None
    normalized_shape : tuple of int
        The last ``len(normalized_shape)`` sizes of ``x``; statistics are taken over those
        axes, separately for every leading index. An int means a 1-tuple.
    eps : float
        Added to the biased variance inside the square root (torch default 1e-5).

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple

    Raises
    ------
    ValueError
        When the trailing sizes of ``x`` or the parameter shapes differ from
        ``normalized_shape``.
    """
    x = _floating(x, "layer_norm")
    shape = _normalized_shape(normalized_shape)
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(
            f"layer_norm: normalized_shape={shape} but the input has shape {x.shape}; its "
            "last axes must equal normalized_shape"
        )
    weight = _optional(weight, shape, "weight", "layer_norm")
    bias = _optional(bias, shape, "bias", "layer_norm")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    xhat, inv_std, _, _ = _standardize(x, axes, eps)
    out = _affine(xhat, weight, bias, shape)
    return out, (xhat, inv_std, weight, bias is not None, axes)


def layer_norm_backward(
    dout: np.ndarray, cache: tuple[Any, ...]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`layer_norm_forward`.

    Returns
    -------
    grad_input : ndarray, shape and dtype of ``x``
        ``inv_std * (g - mean(g) - xhat * mean(g * xhat))`` over the normalised axes,
        ``g = dout * weight``.
    grad_weight, grad_bias : ndarray of shape ``normalized_shape`` or None
        ``sum(dout * xhat)`` and ``sum(dout)`` over the leading axes.
    """
    xhat, inv_std, weight, has_bias, axes = cache
    dout = np.asarray(dout, dtype=xhat.dtype)
    leading = tuple(range(axes[0]))
    param_shape = xhat.shape[axes[0]:]
    grad_xhat, grad_weight, grad_bias = _affine_backward(
        dout, xhat, weight, has_bias, param_shape, leading
    )
    grad_input = _standardize_backward(grad_xhat, xhat, inv_std, axes)
    return grad_input.astype(xhat.dtype, copy=False), grad_weight, grad_bias


# --- group_norm ------------------------------------------------------------------------------

def group_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    *,
    num_groups: int,
    eps: float,
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Group normalisation (``torch.nn.functional.group_norm``).

    The C channels are split into ``num_groups`` consecutive groups of ``C // num_groups``;
    statistics are taken per sample over a group's channels and every spatial axis. The
    affine parameters are per channel.

    Parameters
    ----------
    x : ndarray of shape (N, C, *spatial)
    weight, bias : ndarray of shape (C,) or None
    num_groups : int
        At least 1 and dividing C.
    eps : float
        Added to the biased variance inside the square root (torch default 1e-5).

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple

    Raises
    ------
    ValueError
        When ``num_groups`` does not divide C, or when ``N * (C // num_groups) *
        prod(spatial) == 1`` (torch's check; a group of one value with N > 1 is allowed and
        normalises to 0).
    """
    x = _floating(x, "group_norm")
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, *), got shape {x.shape}")
    batch, channels = x.shape[:2]
    if num_groups < 1 or channels % num_groups:
        raise ValueError(
            f"group_norm: the number of channels ({channels}) must be divisible by "
            f"num_groups ({num_groups})"
        )
    spatial = int(np.prod(x.shape[2:], dtype=np.int64))
    if batch * (channels // num_groups) * spatial == 1:
        raise ValueError(
            f"group_norm: expected more than 1 value per channel when training, got input of "
            f"shape {x.shape} and num_groups={num_groups}"
        )
    weight = _optional(weight, (channels,), "weight", "group_norm")
    bias = _optional(bias, (channels,), "bias", "group_norm")
    grouped = x.reshape(batch, num_groups, (channels // num_groups) * spatial)  # -1 fails on an empty batch
    xhat, inv_std, _, _ = _standardize(grouped, (2,), eps)
    xhat = xhat.reshape(x.shape)
    out = _affine(xhat, weight, bias, _channel_param_shape(x))
    return out, (xhat, inv_std, weight, bias is not None, num_groups)


def group_norm_backward(
    dout: np.ndarray, cache: tuple[Any, ...]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`group_norm_forward`.

    Returns
    -------
    grad_input : ndarray, shape and dtype of ``x``
        The standardisation backward applied per (sample, group).
    grad_weight, grad_bias : ndarray of shape (C,) or None
        ``sum(dout * xhat)`` and ``sum(dout)`` over N and the spatial axes.
    """
    xhat, inv_std, weight, has_bias, num_groups = cache
    dout = np.asarray(dout, dtype=xhat.dtype)
    grad_xhat, grad_weight, grad_bias = _affine_backward(
        dout, xhat, weight, has_bias, _channel_param_shape(xhat), (0, *range(2, xhat.ndim))
    )
    grouped = (xhat.shape[0], num_groups, math.prod(xhat.shape[1:]) // num_groups)  # -1 fails on an empty batch
    grad_input = _standardize_backward(
        grad_xhat.reshape(grouped), xhat.reshape(grouped), inv_std, (2,),
    ).reshape(xhat.shape)
    return grad_input.astype(xhat.dtype, copy=False), grad_weight, grad_bias
