"""Loss layers in numpy, forward and backward, with torch's reductions.

Layers: ``mse_loss``, ``binary_cross_entropy``, ``binary_cross_entropy_with_logits`` and
``cross_entropy``. Each forward takes ``(input, target, *, reduction)`` with ``reduction`` in
``{'mean', 'sum'}`` and returns a 0-d array of the input's dtype; each backward takes a 0-d
upstream gradient and returns the gradient of ``input`` only (the target is not differentiated).

torch's conventions reproduced here:

- ``binary_cross_entropy`` clamps both logarithms at -100, so probabilities of exactly 0 or 1
  give finite losses, and its gradient is ``(p - t) / max(p * (1 - p), eps)`` with
  ``eps = float32(1e-12)`` (also for float64: torch keeps it as a C++ float), so at
  ``p in {0, 1}`` that is 0 when ``t == p`` and ``+-|p - t| / eps`` otherwise (not the
  derivative of the clamped loss, which would be 0).
- For ``'mean'`` the gradient is computed unscaled and divided by the element count last.
- ``cross_entropy`` ignores targets equal to -100 (torch's default ``ignore_index``); with
  ``'mean'`` it divides by the number of targets not ignored (NaN if all are ignored).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from refcheck.layers.activations import log_softmax_forward, sigmoid_forward

__all__ = [
    "binary_cross_entropy_backward",
    "binary_cross_entropy_forward",
    "binary_cross_entropy_with_logits_backward",
    "binary_cross_entropy_with_logits_forward",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "mse_loss_backward",
    "mse_loss_forward",
]

_REDUCTIONS = ("mean", "sum")
# torch's lower bound for log(p) and log(1 - p) in binary_cross_entropy.
_LOG_FLOOR = -100.0
# torch's floor for p * (1 - p) in the binary_cross_entropy gradient. torch stores it as a
# C++ float, so even float64 sees float32(1e-12) = 9.999999960041972e-13, not 1e-12.
_GRAD_EPSILON = float(np.float32(1e-12))
# torch's default ignore_index for cross_entropy.
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


def binary_cross_entropy_forward(
    input: np.ndarray, target: np.ndarray, *, reduction: str
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Binary cross-entropy on probabilities, ``-(t log p + (1 - t) log(1 - p))``.

    Each logarithm is clamped at -100 before it is weighted, exactly as torch does, so
    ``p`` of exactly 0 or 1 gives a finite loss (at most 100 per element).

    Parameters
    ----------
    input : ndarray of any shape
        Probabilities ``p`` in [0, 1].
    target : ndarray, same shape as ``input``
        Targets ``t`` in [0, 1] (hard 0/1 labels or soft targets).
    reduction : {'mean', 'sum'}

    Returns
    -------
    loss : 0-d ndarray of the input's dtype
    cache : tuple

    Raises
    ------
    ValueError
        If a probability or target lies outside [0, 1] (torch raises too).
    """
    _check_reduction(reduction)
    input, target = _prepare(input, target, "binary_cross_entropy")
    if not np.all((input >= 0) & (input <= 1)):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    if not np.all((target >= 0) & (target <= 1)):
        raise ValueError("binary_cross_entropy: all elements of target should be between 0 and 1")
    floor = input.dtype.type(_LOG_FLOOR)
    one = input.dtype.type(1)
    # log(0) is -inf by design here; the clamp turns it into -100.
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(input), floor)
        log_one_minus_p = np.maximum(np.log1p(-input), floor)
    # Same arrangement of terms as torch: (t - 1) * log(1 - p) - t * log(p).
    elementwise = (target - one) * log_one_minus_p - target * log_p
    return _reduce(elementwise, reduction), (input, target, reduction)


def binary_cross_entropy_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> np.ndarray:
    """Gradient of :func:`binary_cross_entropy_forward`, as torch computes it.

    ``dout * (p - t) / max(p * (1 - p), eps)`` with ``eps = float32(1e-12)``, then divided
    by the element count for ``'mean'``. The floor keeps the gradient finite at ``p in {0, 1}``.

    Returns
    -------
    grad_input : ndarray, shape and dtype of ``input``
    """
    input, target, reduction = cache
    dtype = input.dtype
    dout = _scalar_upstream(dout, dtype)
    denominator = np.maximum((dtype.type(1) - input) * input, dtype.type(_GRAD_EPSILON))
    return _reduce_gradient(dout * (input - target) / denominator, reduction)


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


def cross_entropy_forward(
    input: np.ndarray, target: np.ndarray, *, reduction: str
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Cross-entropy of logits against class indices: ``-log_softmax(input)[n, target[n]]``.

    Parameters
    ----------
    input : ndarray of shape (N, C)
        Unnormalised logits.
    target : ndarray of shape (N,), integer
        Class indices in ``[0, C)``; -100 marks a sample to ignore (torch's default).
    reduction : {'mean', 'sum'}
        ``'mean'`` divides by the number of samples not ignored.

    Returns
    -------
    loss : 0-d ndarray of the input's dtype
    cache : tuple

    Raises
    ------
    ValueError
        On wrong shapes or a non-integer target.
    IndexError
        On a class index outside ``[0, C)`` other than -100.
    """
    _check_reduction(reduction)
    input = np.asarray(input)
    target = np.asarray(target)
    if input.ndim != 2 or target.shape != (input.shape[0],):
        raise ValueError(
            f"cross_entropy: expected input (N, C) and target (N,), got {input.shape} and "
            f"{target.shape}"
        )
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError(
            f"cross_entropy: target must hold integer class indices, got {target.dtype}"
        )
    num_classes = input.shape[1]
    kept = target != _IGNORE_INDEX
    out_of_range = kept & ((target < 0) | (target >= num_classes))
    if np.any(out_of_range):
        raise IndexError(f"cross_entropy: target {target[out_of_range][0]} is out of bounds")
    log_probs, _ = log_softmax_forward(input, dim=1)
    safe_target = np.where(kept, target, 0)
    picked = np.take_along_axis(log_probs, safe_target[:, None], axis=1)[:, 0]
    losses = np.where(kept, -picked, input.dtype.type(0))
    total = np.sum(losses)
    if reduction == "mean":
        # 0 / 0 -> NaN when every sample is ignored, as torch; silence numpy's warning for it.
        with np.errstate(invalid="ignore"):
            total = total / input.dtype.type(np.count_nonzero(kept))
    cache = (log_probs, safe_target, kept, reduction)
    return np.asarray(total, dtype=input.dtype), cache


def cross_entropy_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> np.ndarray:
    """Gradient of :func:`cross_entropy_forward`: ``(softmax(input) - onehot(target)) * dout``.

    Rows of ignored samples get a zero gradient; ``'mean'`` divides by the number kept.

    Returns
    -------
    grad_input : ndarray of shape (N, C), dtype of ``input``
    """
    log_probs, safe_target, kept, reduction = cache
    dtype = log_probs.dtype
    dout = _scalar_upstream(dout, dtype)
    grad_input = np.exp(log_probs)
    grad_input[np.arange(grad_input.shape[0]), safe_target] -= dtype.type(1)
    kept_count = int(np.count_nonzero(kept))
    if reduction == "mean" and kept_count > 0:
        dout = dout / dtype.type(kept_count)
    # Ignored rows get exactly 0 (also when all are ignored, where torch returns zeros).
    return np.where(kept[:, None], grad_input * dout, dtype.type(0))
