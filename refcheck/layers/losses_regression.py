"""Regression and divergence losses: ``l1_loss``, ``smooth_l1_loss``, ``huber_loss`` and ``kl_div``.
See :mod:`refcheck.layers.losses_extra` for the conventions.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from refcheck.layers.loss_helpers import _REDUCTIONS, _check_reduction, _elementwise_gradient, _prepare, _reduce

__all__ = [
    "huber_loss_backward",
    "huber_loss_forward",
    "kl_div_backward",
    "kl_div_forward",
    "l1_loss_backward",
    "l1_loss_forward",
    "smooth_l1_loss_backward",
    "smooth_l1_loss_forward",
]


# -------------------------------------------------------------- l1, smooth_l1 and huber


def l1_loss_forward(
    input: np.ndarray, target: np.ndarray, *, reduction: str = "mean"
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Mean (or sum, or each) of absolute differences ``|input - target|``.

    Parameters
    ----------
    input : ndarray of any shape
    target : ndarray, same shape as ``input``
    reduction : {'mean', 'sum', 'none'}

    Returns
    -------
    loss : ndarray of the input's dtype, 0-d or of the input's shape for 'none'
    cache : tuple
    """
    _check_reduction(reduction)
    input, target = _prepare(input, target, "l1_loss")
    diff = input - target
    return _reduce(np.abs(diff), reduction), (diff, reduction)


def l1_loss_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`l1_loss_forward`: ``sign(input - target) * dout`` (0 where equal).

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``input``
    """
    diff, reduction = cache
    return _elementwise_gradient(dout, np.sign(diff), reduction)


def smooth_l1_loss_forward(
    input: np.ndarray, target: np.ndarray, *, reduction: str = "mean", beta: float = 1.0
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Quadratic below ``beta``, linear above: with ``d = input - target``,
    ``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``.

    Parameters
    ----------
    input : ndarray of any shape
    target : ndarray, same shape as ``input``
    reduction : {'mean', 'sum', 'none'}
    beta : float
        ``>= 0`` (torch default 1.0); 0 gives exactly ``l1_loss``.

    Returns
    -------
    loss : ndarray of the input's dtype, 0-d or of the input's shape for 'none'
    cache : tuple
    """
    _check_reduction(reduction)
    if beta < 0:
        raise ValueError("smooth_l1_loss does not support negative values for beta")
    input, target = _prepare(input, target, "smooth_l1_loss")
    diff = input - target
    if beta == 0:
        return _reduce(np.abs(diff), reduction), (diff, reduction, beta)
    magnitude = np.abs(diff)
    dtype = input.dtype.type
    half = dtype(0.5)
    elementwise = np.where(
        magnitude < dtype(beta), half * diff * diff / dtype(beta), magnitude - half * dtype(beta)
    )
    return _reduce(elementwise, reduction), (diff, reduction, beta)


def smooth_l1_loss_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`smooth_l1_loss_forward`: ``clip(d / beta, -1, 1) * dout``.

    With ``beta = 0``, ``sign(d) * dout``.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``input``
    """
    diff, reduction, beta = cache
    if beta == 0:
        return _elementwise_gradient(dout, np.sign(diff), reduction)
    dtype = diff.dtype.type
    one = dtype(1)
    derivative = np.where(
        diff < -dtype(beta), -one, np.where(diff > dtype(beta), one, diff / dtype(beta))
    )
    return _elementwise_gradient(dout, derivative, reduction)


def huber_loss_forward(
    input: np.ndarray, target: np.ndarray, *, reduction: str = "mean", delta: float = 1.0
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Huber loss: with ``d = input - target``, ``0.5 d**2`` where ``|d| < delta``, else
    ``delta * (|d| - 0.5 delta)`` (``delta`` times ``smooth_l1_loss`` with ``beta = delta``).

    Parameters
    ----------
    input : ndarray of any shape
    target : ndarray, same shape as ``input``
    reduction : {'mean', 'sum', 'none'}
    delta : float
        ``> 0`` (torch default 1.0; torch rejects 0 and negative values).

    Returns
    -------
    loss : ndarray of the input's dtype, 0-d or of the input's shape for 'none'
    cache : tuple
    """
    _check_reduction(reduction)
    if not delta > 0:
        raise ValueError("huber_loss does not support non-positive values for delta")
    input, target = _prepare(input, target, "huber_loss")
    diff = input - target
    magnitude = np.abs(diff)
    dtype = input.dtype.type
    half, limit = dtype(0.5), dtype(delta)
    elementwise = np.where(
        magnitude < limit, half * diff * diff, limit * (magnitude - half * limit)
    )
    return _reduce(elementwise, reduction), (diff, reduction, delta)


def huber_loss_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`huber_loss_forward`: ``clip(d, -delta, delta) * dout``.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``input``
    """
    diff, reduction, delta = cache
    limit = diff.dtype.type(delta)
    derivative = np.where(diff < -limit, -limit, np.where(diff > limit, limit, diff))
    return _elementwise_gradient(dout, derivative, reduction)


# ------------------------------------------------------------------------------------ kl_div


def kl_div_forward(
    input: np.ndarray, target: np.ndarray, *, reduction: str = "mean", log_target: bool = False
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Kullback-Leibler divergence with log-probabilities as input.

    ``log_target=False``: ``target * (log(target) - input)``, with ``0 * log 0 = 0``.
    ``log_target=True``: ``exp(target) * (target - input)``.

    Parameters
    ----------
    input : ndarray of any shape
        Log-probabilities.
    target : ndarray, same shape as ``input``
        Probabilities, or log-probabilities when ``log_target``. Not differentiated.
    reduction : {'mean', 'sum', 'none', 'batchmean'}
        torch default 'mean' (divides by the element count, which torch warns about);
        ``'batchmean'`` divides the sum by ``input.shape[0]`` (by 1 for a 0-d input).
    log_target : bool
        torch default False.

    Returns
    -------
    loss : ndarray of the input's dtype, 0-d or of the input's shape for 'none'
    cache : tuple
    """
    _check_reduction(reduction, _REDUCTIONS + ("batchmean",))
    input, target = _prepare(input, target, "kl_div")
    if log_target:
        target_weight = np.exp(target)
        elementwise = target_weight * (target - input)
    else:
        target_weight = target
        # t log t with 0 log 0 = 0; a negative target gives NaN (silently, as torch).
        with np.errstate(divide="ignore", invalid="ignore"):
            t_log_t = np.where(target == 0, target.dtype.type(0), target * np.log(target))
        elementwise = t_log_t - target * input
    batch = input.shape[0] if input.ndim > 0 else 1
    if reduction == "batchmean":
        loss = np.asarray(np.sum(elementwise) / input.dtype.type(batch), dtype=input.dtype)
    else:
        loss = _reduce(elementwise, reduction)
    return loss, (target_weight, reduction, batch)


def kl_div_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`kl_div_forward` with respect to ``input``: ``-target * dout``
    (``-exp(target) * dout`` for ``log_target``), divided as the reduction divides.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``input``
    """
    target_weight, reduction, batch = cache
    divisor = batch if reduction == "batchmean" else None
    return _elementwise_gradient(dout, -target_weight, reduction, divisor)
