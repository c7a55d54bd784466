"""Batch and instance normalisation in numpy, with explicit running statistics.

Both take ``running_mean`` and ``running_var`` as inputs and return the updated ones as extra
outputs, ``((out, new_running_mean, new_running_var), cache)``. torch's update is
``new = (1 - momentum) * old + momentum * batch``, where the batch variance is the UNBIASED one
(``M / (M - 1)`` times the biased variance used to normalise). The running statistics get no
gradient: backward takes the upstream gradient of ``out`` alone. The standardisation itself is
described in :mod:`refcheck.layers.normalization`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .norm_core import (
    _affine,
    _affine_backward,
    _channel_param_shape,
    _eval_standardize,
    _floating,
    _optional,
    _running_update,
    _standardize,
    _standardize_backward,
)

__all__ = [
    "batch_norm_backward",
    "batch_norm_forward",
    "instance_norm_backward",
    "instance_norm_forward",
]


# --- batch_norm ------------------------------------------------------------------------------

def batch_norm_forward(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    *,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[tuple[np.ndarray, np.ndarray | None, np.ndarray | None], tuple[Any, ...]]:
    """Batch normalisation (``torch.nn.functional.batch_norm``), per channel.

    Parameters
    ----------
    x : ndarray of shape (N, C) or (N, C, *spatial), e.g. (N, C, L) or (N, C, H, W)
    running_mean, running_var : ndarray of shape (C,) or None
        Running statistics. Required when ``training`` is False; in training either may be
        None (torch allows it), and its updated value is then None.
    weight, bias : ndarray of shape (C,) or None
    training : bool
        True: normalise with the batch statistics over (N, *spatial) (biased variance) and
        update the running statistics. False: normalise with the running statistics.
    momentum : float
        Weight of the BATCH statistic in the update (torch default 0.1).
    eps : float
        Added to the variance inside the square root (torch default 1e-5).

    Returns
    -------
    (out, new_running_mean, new_running_var) : tuple
        ``out`` has the shape and dtype of ``x``. In training,
        ``new_running_mean = (1 - momentum) * running_mean + momentum * batch_mean`` and
        ``new_running_var = (1 - momentum) * running_var + momentum * batch_var * M / (M - 1)``
        with ``M = N * prod(spatial)`` (torch's unbiased update). In evaluation they are copies
        of the inputs.
    cache : tuple

    Raises
    ------
    ValueError
        In training when ``M == 1`` (one value per channel), as torch does; when ``training``
        is False and a running statistic is None; on wrong shapes.
    """
    x = _floating(x, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, *), got shape {x.shape}")
    channels = x.shape[1]
    running_mean = _optional(running_mean, (channels,), "running_mean", "batch_norm")
    running_var = _optional(running_var, (channels,), "running_var", "batch_norm")
    weight = _optional(weight, (channels,), "weight", "batch_norm")
    bias = _optional(bias, (channels,), "bias", "batch_norm")
    param_shape = _channel_param_shape(x)
    axes = (0, *range(2, x.ndim))
    count = x.size // channels if channels else 0
    if training and count == 0:
        # An empty batch: an empty output and the running statistics as they were, as in torch.
        xhat, inv_std = x.copy(), np.ones(param_shape, dtype=x.dtype)
        new_mean, new_var = (None if s is None else s.copy() for s in (running_mean, running_var))
        training = False  # the backward's evaluation form (g * inv_std): empty like the batch
    elif training:
        if count == 1:
            raise ValueError(
                "batch_norm: expected more than 1 value per channel when training, got input "
                f"of shape {x.shape}"
            )
        xhat, inv_std, mean, var = _standardize(x, axes, eps)
        # torch normalises with the biased variance but tracks the unbiased one.
        unbiased = var.reshape(channels) * x.dtype.type(count / (count - 1))
        new_mean = _running_update(running_mean, mean.reshape(channels), momentum)
        new_var = _running_update(running_var, unbiased, momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are required when "
                             "training is False")
        xhat, inv_std = _eval_standardize(x, running_mean, running_var, eps, param_shape)
        new_mean, new_var = running_mean.copy(), running_var.copy()
    out = _affine(xhat, weight, bias, param_shape)
    cache = (xhat, inv_std, weight, bias is not None, axes, training)
    return (out, new_mean, new_var), cache


def batch_norm_backward(
    dout: np.ndarray, cache: tuple[Any, ...]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`batch_norm_forward` with respect to ``x``, ``weight``, ``bias``.

    Parameters
    ----------
    dout : ndarray, shape of ``out``
        Upstream gradient of ``out`` (the running statistics are not differentiable).

    Returns
    -------
    grad_input : ndarray, shape and dtype of ``x``
        Training: ``inv_std * (g - mean(g) - xhat * mean(g * xhat))`` per channel, with
        ``g = dout * weight``. Evaluation: ``g * inv_std`` (the statistics are constants).
    grad_weight : ndarray of shape (C,) or None
        ``sum(dout * xhat)`` over (N, *spatial).
    grad_bias : ndarray of shape (C,) or None
        ``sum(dout)`` over (N, *spatial).
    """
    xhat, inv_std, weight, has_bias, axes, training = cache
    dout = np.asarray(dout, dtype=xhat.dtype)
    param_shape = _channel_param_shape(xhat)
    grad_xhat, grad_weight, grad_bias = _affine_backward(
        dout, xhat, weight, has_bias, param_shape, axes
    )
    if training:
        grad_input = _standardize_backward(grad_xhat, xhat, inv_std, axes)
    else:
        grad_input = grad_xhat * inv_std
    return grad_input.astype(xhat.dtype, copy=False), grad_weight, grad_bias


# --- instance_norm ---------------------------------------------------------------------------

def instance_norm_forward(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    *,
    use_input_stats: bool,
    momentum: float,
    eps: float,
) -> tuple[tuple[np.ndarray, np.ndarray | None, np.ndarray | None], tuple[Any, ...]]:
    """Instance normalisation (``torch.nn.functional.instance_norm``), per sample and channel.

    Parameters
    ----------
    x : ndarray of shape (N, C, *spatial)
    running_mean, running_var : ndarray of shape (C,) or None
        Optional running statistics (torch's defaults are None). Required when
        ``use_input_stats`` is False.
    weight, bias : ndarray of shape (C,) or None
    use_input_stats : bool
        True (torch default): normalise each (n, c) slice with its own statistics over the
        spatial axes (biased variance) and update the running statistics, if given, with
        their average over the batch. False: normalise with the running statistics.
    momentum : float
        Weight of the batch statistic in the update (torch default 0.1).
    eps : float
        Added to the variance inside the square root (torch default 1e-5).

    Returns
    -------
    (out, new_running_mean, new_running_var) : tuple
        ``out`` has the shape and dtype of ``x``. With ``use_input_stats`` and running
        statistics, ``new_running_mean = (1 - momentum) * running_mean + momentum *
        mean_n(mean_spatial(x))`` and ``new_running_var`` likewise with the batch average of
        the UNBIASED per-instance variances. Otherwise copies of the inputs (None for None).
    cache : tuple

    Raises
    ------
    ValueError
        With ``use_input_stats`` when ``prod(spatial) == 1`` (torch: "Expected more than 1
        spatial element when training"); without it when a running statistic is None.
    """
    x = _floating(x, "instance_norm")
    if x.ndim < 2:
        raise ValueError(f"instance_norm: input must be (N, C, *), got shape {x.shape}")
    channels = x.shape[1]
    running_mean = _optional(running_mean, (channels,), "running_mean", "instance_norm")
    running_var = _optional(running_var, (channels,), "running_var", "instance_norm")
    weight = _optional(weight, (channels,), "weight", "instance_norm")
    bias = _optional(bias, (channels,), "bias", "instance_norm")
    param_shape = _channel_param_shape(x)
    axes = tuple(range(2, x.ndim))
    if use_input_stats:
        spatial = int(np.prod(x.shape[2:], dtype=np.int64))
        if spatial <= 1:
            raise ValueError(
                "instance_norm: expected more than 1 spatial element when using input "
                f"statistics, got input of shape {x.shape}"
            )
        xhat, inv_std, mean, var = _standardize(x, axes, eps)
        unbiased = var * x.dtype.type(spatial / (spatial - 1))
        batch_mean = np.mean(mean.reshape(x.shape[:2]), axis=0, dtype=x.dtype)
        batch_var = np.mean(unbiased.reshape(x.shape[:2]), axis=0, dtype=x.dtype)
        new_mean = _running_update(running_mean, batch_mean, momentum)
        new_var = _running_update(running_var, batch_var, momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var are required when "
                             "use_input_stats is False")
        xhat, inv_std = _eval_standardize(x, running_mean, running_var, eps, param_shape)
        new_mean, new_var = running_mean.copy(), running_var.copy()
    out = _affine(xhat, weight, bias, param_shape)
    cache = (xhat, inv_std, weight, bias is not None, axes, use_input_stats)
    return (out, new_mean, new_var), cache


def instance_norm_backward(
    dout: np.ndarray, cache: tuple[Any, ...]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`instance_norm_forward` (``dout`` is the gradient of ``out``).

    Returns
    -------
    grad_input : ndarray, shape and dtype of ``x``
        The standardisation backward per (n, c) over the spatial axes; ``g * inv_std`` when
        the running statistics were used.
    grad_weight, grad_bias : ndarray of shape (C,) or None
        ``sum(dout * xhat)`` and ``sum(dout)`` over N and the spatial axes.
    """
    xhat, inv_std, weight, has_bias, axes, use_input_stats = cache
    dout = np.asarray(dout, dtype=xhat.dtype)
    grad_xhat, grad_weight, grad_bias = _affine_backward(
        dout, xhat, weight, has_bias, _channel_param_shape(xhat), (0, *axes)
    )
    if use_input_stats:
        grad_input = _standardize_backward(grad_xhat, xhat, inv_std, axes)
    else:
        grad_input = grad_xhat * inv_std
    return grad_input.astype(xhat.dtype, copy=False), grad_weight, grad_bias
