"""More loss layers in numpy, forward and backward, with torch's reductions and class weights.

Layers: ``nll_loss``, ``cross_entropy`` (class weights, ``ignore_index``, ``label_smoothing``),
``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, ``kl_div``, ``multi_margin_loss`` and
``binary_cross_entropy`` (optional element weights). Each forward takes
``(input, target, [weight], *, reduction, ...)`` with ``reduction`` in ``{'mean', 'sum',
'none'}`` (``kl_div`` also ``'batchmean'``) and returns a 0-d array of the input's dtype, or the
per-element losses for ``'none'``. Each backward takes the upstream gradient (0-d, or of the
output's shape for ``'none'``) and returns ``(grad_input,)``: targets and weights are not
differentiated.

``cross_entropy_*`` and ``binary_cross_entropy_*`` here are supersets of the ones in
:mod:`refcheck.layers.losses`: with the new arguments at their defaults they give the same
results, and ``f(input, target, reduction=...)`` still works.

torch's conventions reproduced here:

- Weighted ``'mean'`` of ``nll_loss``/``cross_entropy`` divides by the sum of the weights of the
  targets not ignored, ``sum_n w[t_n]`` (the count of kept targets without weights). When every
  target is ignored that is 0/0: the loss is NaN and the gradient 0. When targets are kept but
  their weights sum to 0, the loss is NaN and so is the gradient of the kept samples.
- ``label_smoothing`` ``e`` with ``C`` classes: ``(1 - e) * nll + (e / C) * smooth`` where
  ``smooth_n = -sum_c w[c] * log_softmax(input)[n, c]`` (the class weights weigh each class of
  the uniform part, not the target's weight), 0 for ignored targets, and for ``'mean'`` divided
  by the same ``sum_n w[t_n]`` as the nll term.
- ``smooth_l1_loss`` with ``beta = 0`` is exactly ``l1_loss``; both have gradient 0 where
  ``input == target``. At ``|input - target| == beta`` the two branches meet (gradient +-1).
- ``multi_margin_loss`` sums ``max(0, margin - x[y] + x[i])**p`` over ``i != y`` only, times
  ``weight[y]``, divided by ``C``; a margin term of exactly 0 adds no gradient.
- ``kl_div``: ``'mean'`` divides by the element count, ``'batchmean'`` by ``input.shape[0]``
  (the true KL divergence per sample). A target of 0 contributes 0 (``0 * log 0 = 0``), a
  negative target gives NaN (``log_target=False``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from refcheck.layers.activations import log_softmax_forward
from refcheck.layers.losses import _GRAD_EPSILON, _IGNORE_INDEX, _LOG_FLOOR

__all__ = [
    "binary_cross_entropy_backward",
    "binary_cross_entropy_forward",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "huber_loss_backward",
    "huber_loss_forward",
    "kl_div_backward",
    "kl_div_forward",
    "l1_loss_backward",
    "l1_loss_forward",
    "multi_margin_loss_backward",
    "multi_margin_loss_forward",
    "nll_loss_backward",
    "nll_loss_forward",
    "smooth_l1_loss_backward",
    "smooth_l1_loss_forward",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")


def _prepare(input: np.ndarray, target: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Input as an array, target as an array of the same shape and dtype."""
    input = np.asarray(input)
    target = np.asarray(target, dtype=input.dtype)
    if target.shape != input.shape:
        raise ValueError(f"{name}: target {target.shape} must have the input's shape {input.shape}")
    return input, target


def _upstream(dout: np.ndarray, dtype: np.dtype, reduction: str, shape: tuple) -> np.ndarray:
    """The upstream gradient: 0-d for a reduced loss, of the loss's ``shape`` for ``'none'``."""
    dout = np.asarray(dout, dtype=dtype)
    expected = shape if reduction == "none" else ()
    if dout.shape != expected:
        raise ValueError(
            f"the upstream gradient of this loss (reduction={reduction!r}) must have shape "
            f"{expected}, got {dout.shape}"
        )
    return dout


def _reduce(elementwise: np.ndarray, reduction: str) -> np.ndarray:
    """Mean, sum or nothing, as an array of the elements' dtype (0-d when reduced)."""
    if reduction == "none":
        return np.asarray(elementwise)
    total = np.mean(elementwise) if reduction == "mean" else np.sum(elementwise)
    return np.asarray(total, dtype=elementwise.dtype)


def _elementwise_gradient(
    dout: np.ndarray, derivative: np.ndarray, reduction: str, divisor: int | None = None
) -> tuple[np.ndarray]:
    """``dout * derivative``, divided by the element count (or ``divisor``) for a mean."""
    dtype = derivative.dtype
    dout = _upstream(dout, dtype, reduction, derivative.shape)
    grad_input = dout * derivative
    if reduction in ("mean", "batchmean"):
        count = derivative.size if divisor is None else divisor
        grad_input = grad_input / dtype.type(count)
    return (np.asarray(grad_input),)


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


# -------------------------------------------------------------------------- multi_margin_loss


def multi_margin_loss_forward(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    p: int = 1,
    margin: float = 1.0,
    reduction: str = "mean",
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Multi-class hinge (SVM) loss.

    ``loss_n = w[y] / C * sum_{i != y} max(0, margin - x[n, y] + x[n, i])**p`` with
    ``y = target[n]``.

    Parameters
    ----------
    input : ndarray of shape (N, C) or (C,)
        Class scores.
    target : integer ndarray of shape (N,) or ()
        Class indices in ``[0, C)``.
    weight : ndarray of shape (C,) or None
        Class weights; sample ``n`` is weighted by ``w[target[n]]`` (torch default None).
    p : {1, 2}
        torch default 1.
    margin : float
        Any real (torch default 1.0).
    reduction : {'mean', 'sum', 'none'}
        ``'mean'`` divides by N.

    Returns
    -------
    loss : ndarray of the input's dtype, 0-d, or of the target's shape for 'none'
    cache : tuple
    """
    _check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 supported, got {p}")
    input, target = np.asarray(input), np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError("multi_margin_loss: target must hold integer class indices")
    unbatched = input.ndim == 1 and target.ndim == 0
    if unbatched:
        input, target = input[None], target[None]
    if input.ndim != 2 or target.shape != (input.shape[0],):
        raise ValueError(
            f"multi_margin_loss: expected input (N, C) and target (N,), or input (C,) and a 0-d "
            f"target; got {input.shape} and {target.shape}"
        )
    num_classes = input.shape[1]
    if np.any((target < 0) | (target >= num_classes)):
        raise IndexError("multi_margin_loss: target is out of bounds")
    dtype = input.dtype
    weight = _class_weights(weight, num_classes, dtype, "multi_margin_loss")
    rows = np.arange(input.shape[0])
    margins = dtype.type(margin) - input[rows, target][:, None] + input
    # Only the other classes count: the target's own term would add margin**p to every sample.
    active = margins > 0
    active[rows, target] = False
    hinge = np.where(active, margins if p == 1 else margins * margins, dtype.type(0))
    sample_scale = weight[target] / dtype.type(num_classes)
    losses = np.sum(hinge, axis=1) * sample_scale
    if reduction == "none":
        loss = losses[0, ...] if unbatched else losses
    else:
        loss = _reduce(losses, reduction)
    return loss, (margins, active, target, sample_scale, p, reduction, unbatched)


def multi_margin_loss_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`multi_margin_loss_forward`.

    For each other class ``i`` whose margin term ``z = margin - x[y] + x[i]`` is positive:
    ``+h`` at ``i`` and ``-h`` at ``y``, with ``h = w[y] / C * dout_n`` (times ``2 z`` for p=2).

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``input``
    """
    margins, active, target, sample_scale, p, reduction, unbatched = cache
    dtype = margins.dtype
    batch = margins.shape[0]
    dout = _upstream(dout, dtype, reduction, () if unbatched else (batch,))
    per_sample = np.broadcast_to(dout, (batch,)) * sample_scale
    if reduction == "mean":
        per_sample = per_sample / dtype.type(batch)
    slope = np.ones_like(margins) if p == 1 else dtype.type(2) * margins
    grad_input = np.where(active, slope * per_sample[:, None], dtype.type(0))
    grad_input[np.arange(batch), target] = -np.sum(grad_input, axis=1)
    return (grad_input[0, ...] if unbatched else grad_input,)


# ----------------------------------------------------------------------- binary_cross_entropy


def binary_cross_entropy_forward(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    reduction: str = "mean",
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Binary cross-entropy on probabilities, ``-w (t log p + (1 - t) log(1 - p))``.

    Each logarithm is clamped at -100 as torch does, so ``p`` of exactly 0 or 1 gives a finite
    loss.

    Parameters
    ----------
    input : ndarray of any shape
        Probabilities ``p`` in [0, 1].
    target : ndarray, same shape as ``input``
        Targets ``t`` in [0, 1].
    weight : ndarray broadcastable to the input's shape, or None
        Element weights (torch default None).
    reduction : {'mean', 'sum', 'none'}
        ``'mean'`` divides by the element count (not by the weights).

    Returns
    -------
    loss : ndarray of the input's dtype, 0-d or of the input's shape for 'none'
    cache : tuple

    Raises
    ------
    ValueError
        If a probability or target lies outside [0, 1], or the weight does not broadcast.
    """
    _check_reduction(reduction)
    input, target = _prepare(input, target, "binary_cross_entropy")
    if not np.all((input >= 0) & (input <= 1)):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    if not np.all((target >= 0) & (target <= 1)):
        raise ValueError("binary_cross_entropy: all elements of target should be between 0 and 1")
    if weight is not None:
        weight = np.asarray(weight, dtype=input.dtype)
        try:
            broadcast = np.broadcast_shapes(weight.shape, input.shape)
        except ValueError:
            broadcast = None
        if broadcast != input.shape:
            raise ValueError(
                f"binary_cross_entropy: weight {weight.shape} does not broadcast to the input's "
                f"shape {input.shape}"
            )
    floor = input.dtype.type(_LOG_FLOOR)
    one = input.dtype.type(1)
    with np.errstate(divide="ignore"):  # log(0) = -inf, clamped to -100 just below
        log_p = np.maximum(np.log(input), floor)
        log_one_minus_p = np.maximum(np.log1p(-input), floor)
    elementwise = (target - one) * log_one_minus_p - target * log_p
    if weight is not None:
        elementwise = elementwise * weight
    return _reduce(elementwise, reduction), (input, target, weight, reduction)


def binary_cross_entropy_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`binary_cross_entropy_forward`, as torch computes it.

    ``w * dout * (p - t) / max(p * (1 - p), eps)`` with ``eps = float32(1e-12)`` (also for
    float64), divided by the element count for ``'mean'``.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``input``
    """
    input, target, weight, reduction = cache
    dtype = input.dtype
    denominator = np.maximum((dtype.type(1) - input) * input, dtype.type(_GRAD_EPSILON))
    derivative = (input - target) / denominator
    if weight is not None:
        derivative = derivative * weight
    return _elementwise_gradient(dout, derivative, reduction)
