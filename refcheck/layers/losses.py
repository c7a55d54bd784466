"""Loss layers in numpy, forward and backward, with torch's reductions.

Layers: ``mse_loss`` and ``binary_cross_entropy_with_logits``. Each forward takes
``(input, target, *, reduction)`` with ``reduction`` in ``{'mean', 'sum'}`` and returns a 0-d array
of the input's dtype; each backward takes a 0-d upstream gradient and returns the gradient of
``input`` only (the target is not differentiated). For ``'mean'`` the gradient is computed
unscaled and divided by the element count last.

``binary_cross_entropy`` and ``cross_entropy`` (with class weights, ``ignore_index`` and
``label_smoothing``) are in :mod:`refcheck.layers.losses_extra`; the constants below are shared
with them:

- ``binary_cross_entropy`` clamps both logarithms at -100 (``_LOG_FLOOR``), and its gradient is
  ``(p - t) / max(p * (1 - p), eps)`` with ``eps = float32(1e-12)`` (``_GRAD_EPSILON``; also for
  float64: torch keeps it as a C++ float);
- ``cross_entropy`` and ``nll_loss`` ignore targets equal to -100 by default (``_IGNORE_INDEX``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from refcheck.layers.activations import sigmoid_forward

__all__ = [
    "binary_cross_entropy_with_logits_backward",
    "binary_cross_entropy_with_logits_forward",
    "mse_loss_backward",
    "mse_loss_forward",
]

_REDUCTIONS = ("mean", "sum")
# torch's lower bound for log(p) and log(1 - p) in binary_cross_entropy.
_LOG_FLOOR = -100.0
# torch's floor for p * (1 - p) in the binary_cross_entropy gradient. torch stores it as a
# C++ float, so even float64 sees float32(1e-12) = 9.999999960041972e-13, not 1e-12.
_GRAD_EPSILON = float(np.float32(1e-12))
# torch's default ignore_index for cross_entropy and nll_loss.
_IGNORE_INDEX = -100


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _prepare(input: np.ndarray, target: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Input as an array, target as an array of the same shape and dtype."""
    input = np.asarray(input)
    target = np.asarray(target, dtype=input.dtype)
    if target.shape != input.shape:
        raise ValueError(f"{name}: target {target.shape} must have the input's shape {input.shape}")
    return input, target


def _reduce(elementwise: np.ndarray, reduction: str) -> np.ndarray:
    """Sum or mean of all elements as a 0-d array of the same dtype."""
    total = np.mean(elementwise) if reduction == "mean" else np.sum(elementwise)
    return np.asarray(total, dtype=elementwise.dtype)


def _reduce_gradient(grad_input: np.ndarray, reduction: str) -> np.ndarray:
    """Backward of :func:`_reduce`: divide by the element count for ``'mean'``, as torch does last."""
    if reduction == "mean":
        grad_input = grad_input / grad_input.dtype.type(grad_input.size)
    return grad_input


def _scalar_upstream(dout: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The upstream gradient of a loss as a 0-d array of the input's dtype."""
    dout = np.asarray(dout, dtype=dtype)
    if dout.shape != ():
        raise ValueError(f"the upstream gradient of a loss must be 0-d, got shape {dout.shape}")
    return dout


def mse_loss_forward(
    input: np.ndarray, target: np.ndarray, *, reduction: str
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Mean (or sum) of squared differences ``(input - target)**2``.

    Parameters
    ----------
    input : ndarray of any shape
    target : ndarray, same shape as ``input``
    reduction : {'mean', 'sum'}

    Returns
    -------
    loss : 0-d ndarray of the input's dtype
    cache : tuple
    """
    _check_reduction(reduction)
    input, target = _prepare(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction), (diff, reduction)


def mse_loss_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> np.ndarray:
    """Gradient of :func:`mse_loss_forward`: ``2 * (input - target) * dout`` (``/ N`` for mean).

    Returns
    -------
    grad_input : ndarray, shape and dtype of ``input``
    """
    diff, reduction = cache
    dtype = diff.dtype
    return _reduce_gradient(dtype.type(2) * diff * _scalar_upstream(dout, dtype), reduction)


def binary_cross_entropy_with_logits_forward(
    input: np.ndarray, target: np.ndarray, *, reduction: str
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Binary cross-entropy on logits ``x``: ``(1 - t) * x - log(sigmoid(x))``.

    Equal to ``binary_cross_entropy(sigmoid(x), t)`` without its clamp, and stable for any
    ``|x|``: ``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))`` never overflows.

    Parameters
    ----------
    input : ndarray of any shape
        Logits.
    target : ndarray, same shape as ``input``
        Targets in [0, 1].
    reduction : {'mean', 'sum'}

    Returns
    -------
    loss : 0-d ndarray of the input's dtype
    cache : tuple
    """
    _check_reduction(reduction)
    input, target = _prepare(input, target, "binary_cross_entropy_with_logits")
    one = input.dtype.type(1)
    exp_neg_abs = np.exp(-np.abs(input))
    log_sigmoid = np.minimum(input, input.dtype.type(0)) - np.log1p(exp_neg_abs)
    elementwise = (one - target) * input - log_sigmoid
    sigmoid, _ = sigmoid_forward(input)  # for the backward
    return _reduce(elementwise, reduction), (sigmoid, target, reduction)


def binary_cross_entropy_with_logits_backward(
    dout: np.ndarray, cache: tuple[Any, ...]
) -> np.ndarray:
    """Gradient of :func:`binary_cross_entropy_with_logits_forward`: ``(sigmoid(x) - t) * dout``.

    Divided by the element count for ``'mean'``.

    Returns
    -------
    grad_input : ndarray, shape and dtype of ``input``
    """
    sigmoid, target, reduction = cache
    return _reduce_gradient((sigmoid - target) * _scalar_upstream(dout, sigmoid.dtype), reduction)
