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

Running statistics are explicit state: ``batch_norm`` and ``instance_norm`` take
``running_mean`` and ``running_var`` as inputs and return the updated ones as extra outputs,
``((out, new_running_mean, new_running_var), cache)``. torch's update is
``new = (1 - momentum) * old + momentum * batch`` where the batch variance is the UNBIASED one
(``M / (M - 1)`` times the variance used to normalise). Running statistics get no gradient;
backward takes the upstream gradient of ``out`` alone.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "batch_norm_backward",
    "batch_norm_forward",
    "group_norm_backward",
    "group_norm_forward",
    "instance_norm_backward",
    "instance_norm_forward",
    "layer_norm_backward",
    "layer_norm_forward",
]

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
    if training:
        if count <= 1:
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
    grouped = x.reshape(batch, num_groups, -1)
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
    batch = xhat.shape[0]
    grad_input = _standardize_backward(
        grad_xhat.reshape(batch, num_groups, -1), xhat.reshape(batch, num_groups, -1),
        inv_std, (2,),
    ).reshape(xhat.shape)
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
