"""Losses on class indices: ``nll_loss`` and ``cross_entropy`` (class weights, ``ignore_index``,
``label_smoothing``), as torch computes them. See :mod:`refcheck.layers.losses_extra` for the
conventions.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from refcheck.layers.activations import log_softmax_forward
from refcheck.layers.loss_helpers import _check_reduction, _upstream
from refcheck.layers.losses import _IGNORE_INDEX

__all__ = ["cross_entropy_backward", "cross_entropy_forward", "nll_loss_backward", "nll_loss_forward"]


# ------------------------------------------------------------------------- nll_loss


def _class_targets(
    input: np.ndarray, target: np.ndarray, ignore_index: int, name: str
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Batched input (N, C, *) and target (N, *), and whether the call was unbatched.

    An unbatched input of shape (C,) with a 0-d target becomes (1, C) and (1,).
    """
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"{name}: target must hold integer class indices, got {target.dtype}")
    unbatched = input.ndim == 1 and target.ndim == 0
    if unbatched:
        input, target = input[None], target[None]
    if input.ndim < 2 or target.shape != (input.shape[0],) + input.shape[2:]:
        raise ValueError(
            f"{name}: expected input (N, C) or (N, C, d1, ...) and target (N,) or "
            f"(N, d1, ...), or input (C,) and a 0-d target; got {input.shape} and {target.shape}"
        )
    kept = target != ignore_index
    out_of_range = kept & ((target < 0) | (target >= input.shape[1]))
    if np.any(out_of_range):
        raise IndexError(f"{name}: target {target[out_of_range][0]} is out of bounds")
    return input, target, unbatched


def _class_weights(weight: np.ndarray | None, num_classes: int, dtype: np.dtype, name: str):
    """Class weights as an array of ``dtype``, shape (C,); ones when ``weight`` is None."""
    if weight is None:
        return np.ones(num_classes, dtype=dtype)
    weight = np.asarray(weight, dtype=dtype)
    if weight.shape != (num_classes,):
        raise ValueError(f"{name}: weight must have shape ({num_classes},), got {weight.shape}")
    return weight


def _weighted_nll(
    log_probs: np.ndarray, target: np.ndarray, weight: np.ndarray, ignore_index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-target losses ``-w[t] * log_probs[n, t, ...]`` (0 where ignored) and their parts.

    Returns the losses, the kept mask, the targets with ignored ones replaced by class 0 (safe
    to index with), and the weights of the targets (0 where ignored); all of the target's shape.
    """
    kept = target != ignore_index
    safe_target = np.where(kept, target, 0)
    picked = np.take_along_axis(log_probs, safe_target[:, None], axis=1)[:, 0]
    zero = log_probs.dtype.type(0)
    target_weight = np.where(kept, weight[safe_target], zero)
    # where(), not a product with the mask: an ignored -inf log-probability must not give NaN.
    losses = np.where(kept, -target_weight * picked, zero)
    return losses, kept, safe_target, target_weight


def _mean_divisor(target_weight: np.ndarray) -> np.ndarray:
    """torch's weighted-mean denominator: the summed weights of the kept targets."""
    return np.sum(target_weight)


def _finish(losses: np.ndarray, divisor: np.ndarray, reduction: str, unbatched: bool):
    """Reduce per-target losses; ``'mean'`` divides by ``divisor`` (0/0 gives NaN, as torch)."""
    if reduction == "none":
        return losses[0, ...] if unbatched else losses
    total = np.sum(losses)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / divisor
    return np.asarray(total, dtype=losses.dtype)


def _per_target_scale(dout, reduction, divisor, kept, unbatched, dtype) -> np.ndarray:
    """The upstream gradient of each target's loss (0 where ignored), of the target's shape."""
    shape = kept.shape[1:] if unbatched else kept.shape
    dout = _upstream(dout, dtype, reduction, shape)
    if reduction == "none":
        scale = dout[None] if unbatched else dout
    elif reduction == "mean":
        # dout / 0 is inf (or NaN): kept targets then get NaN (as torch), ignored ones 0.
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.broadcast_to(dout / divisor, kept.shape)
    else:
        scale = np.broadcast_to(dout, kept.shape)
    return np.where(kept, scale, dtype.type(0))


def nll_loss_forward(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    ignore_index: int = _IGNORE_INDEX,
    reduction: str = "mean",
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Negative log-likelihood of log-probabilities: ``-w[t_n] * input[n, t_n, ...]``.

    Parameters
    ----------
    input : ndarray of shape (N, C), (N, C, d1, ...) or (C,)
        Log-probabilities (any real values are accepted).
    target : integer ndarray of shape (N,), (N, d1, ...) or () respectively
        Class indices in ``[0, C)``, or ``ignore_index``.
    weight : ndarray of shape (C,) or None
        Class weights (torch default None: all ones).
    ignore_index : int
        Targets equal to it contribute 0 and are left out of the mean (torch default -100).
        It may be any integer, also a valid class.
    reduction : {'mean', 'sum', 'none'}
        ``'mean'`` is ``sum_n loss_n / sum_n w[t_n]`` over targets not ignored (torch default).

    Returns
    -------
    loss : ndarray of the input's dtype, 0-d, or of the target's shape for 'none'
    cache : tuple

    Raises
    ------
    ValueError
        On wrong shapes or a non-integer target.
    IndexError
        On a class index outside ``[0, C)`` other than ``ignore_index``.
    """
    _check_reduction(reduction)
    input, target, unbatched = _class_targets(
        np.asarray(input), np.asarray(target), ignore_index, "nll_loss"
    )
    weight = _class_weights(weight, input.shape[1], input.dtype, "nll_loss")
    losses, kept, safe_target, target_weight = _weighted_nll(input, target, weight, ignore_index)
    divisor = _mean_divisor(target_weight)
    loss = _finish(losses, divisor, reduction, unbatched)
    return loss, (input.shape, input.dtype, kept, safe_target, target_weight, divisor, reduction,
                  unbatched)


def nll_loss_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`nll_loss_forward`: ``-w[t_n] * dout_n`` at ``[n, t_n, ...]``, else 0.

    For ``'mean'`` divided by ``sum_n w[t_n]``.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``input``
    """
    shape, dtype, kept, safe_target, target_weight, divisor, reduction, unbatched = cache
    scale = _per_target_scale(dout, reduction, divisor, kept, unbatched, dtype)
    grad_input = np.zeros(shape, dtype=dtype)
    with np.errstate(invalid="ignore"):  # 0 * inf when the kept weights sum to 0: NaN, as torch
        values = np.where(kept, -target_weight * scale, dtype.type(0))
    np.put_along_axis(grad_input, safe_target[:, None], values[:, None], axis=1)
    return (grad_input[0, ...] if unbatched else grad_input,)


# ---------------------------------------------------------------------------- cross_entropy


def cross_entropy_forward(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    ignore_index: int = _IGNORE_INDEX,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Cross-entropy of logits against class indices, with class weights and label smoothing.

    ``loss_n = (1 - e) * nll_n + (e / C) * smooth_n`` with ``logp = log_softmax(input, 1)``,
    ``nll_n = -w[t_n] * logp[n, t_n]`` and ``smooth_n = -sum_c w[c] * logp[n, c]``, both 0 for
    ignored targets.

    Parameters
    ----------
    input : ndarray of shape (N, C), (N, C, d1, ...) or (C,)
        Unnormalised logits.
    target : integer ndarray of shape (N,), (N, d1, ...) or () respectively
        Class indices in ``[0, C)``, or ``ignore_index``.
    weight : ndarray of shape (C,) or None
        Class weights (torch default None).
    ignore_index : int
        torch default -100.
    reduction : {'mean', 'sum', 'none'}
        ``'mean'`` divides both terms by ``sum_n w[t_n]`` over kept targets (torch default).
    label_smoothing : float
        ``e`` in [0, 1] (torch default 0.0).

    Returns
    -------
    loss : ndarray of the input's dtype, 0-d, or of the target's shape for 'none'
    cache : tuple

    Raises
    ------
    ValueError
        On wrong shapes, a non-integer target or ``label_smoothing`` outside [0, 1].
    IndexError
        On a class index outside ``[0, C)`` other than ``ignore_index``.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    input, target, unbatched = _class_targets(
        np.asarray(input), np.asarray(target), ignore_index, "cross_entropy"
    )
    dtype = input.dtype
    num_classes = input.shape[1]
    weight = _class_weights(weight, num_classes, dtype, "cross_entropy")
    log_probs, _ = log_softmax_forward(input, dim=1)
    losses, kept, safe_target, target_weight = _weighted_nll(
        log_probs, target, weight, ignore_index
    )
    divisor = _mean_divisor(target_weight)
    loss = _finish(losses, divisor, reduction, unbatched)
    if label_smoothing > 0:
        class_shape = (1, num_classes) + (1,) * (input.ndim - 2)
        smooth = -np.sum(log_probs * weight.reshape(class_shape), axis=1)
        smooth = np.where(kept, smooth, dtype.type(0))
        # Each term is reduced on its own, as torch does: with a zero weight sum the nll mean
        # is 0/0 = NaN and so is the total (a joint sum over 0 would give inf instead).
        smooth_loss = _finish(smooth, divisor, reduction, unbatched)
        loss = np.asarray(
            dtype.type(1.0 - label_smoothing) * loss
            + dtype.type(label_smoothing / num_classes) * smooth_loss,
            dtype=dtype,
        )
    cache = (log_probs, weight, kept, safe_target, target_weight, divisor, reduction, unbatched,
             label_smoothing)
    return loss, cache


def cross_entropy_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`cross_entropy_forward`.

    With ``s_n`` the upstream gradient of sample ``n`` (``/ sum w[t]`` for ``'mean'``, 0 if
    ignored), the gradient with respect to ``logp`` is
    ``G[n, c] = -s_n * ((1 - e) w[t_n] [c == t_n] + (e / C) w[c])`` and then, through
    log_softmax, ``grad_input = G - softmax(input) * sum_c G``.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``input``
    """
    (log_probs, weight, kept, safe_target, target_weight, divisor, reduction, unbatched,
     label_smoothing) = cache
    dtype = log_probs.dtype
    num_classes = log_probs.shape[1]
    scale = _per_target_scale(dout, reduction, divisor, kept, unbatched, dtype)
    grad_log_probs = np.zeros(log_probs.shape, dtype=dtype)
    # A zero weight sum under 'mean' makes scale infinite for kept targets: NaN, as in torch.
    with np.errstate(invalid="ignore"):
        picked = -dtype.type(1.0 - label_smoothing) * target_weight * scale
        picked = np.where(kept, picked, dtype.type(0))
        np.put_along_axis(grad_log_probs, safe_target[:, None], picked[:, None], axis=1)
        if label_smoothing > 0:
            class_shape = (1, num_classes) + (1,) * (log_probs.ndim - 2)
            uniform = -dtype.type(label_smoothing / num_classes) * weight.reshape(class_shape)
            grad_log_probs = grad_log_probs + uniform * scale[:, None]
        # log_softmax's Jacobian-vector product; rows of ignored targets stay exactly 0.
        total = np.sum(grad_log_probs, axis=1, keepdims=True)
        grad_input = grad_log_probs - np.exp(log_probs) * total
    return (grad_input[0, ...] if unbatched else grad_input,)
