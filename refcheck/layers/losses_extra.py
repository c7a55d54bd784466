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

from refcheck.layers.loss_helpers import _check_reduction, _prepare, _reduce, _upstream
from refcheck.layers.losses import _GRAD_EPSILON, _LOG_FLOOR
from refcheck.layers.losses_class import *  # noqa: F401,F403
from refcheck.layers.losses_class import _class_weights
from refcheck.layers.losses_class import __all__ as _class_losses
from refcheck.layers.losses_regression import *  # noqa: F401,F403
from refcheck.layers.losses_regression import __all__ as _regression_losses

__all__ = sorted(_class_losses + _regression_losses + [
    "binary_cross_entropy_backward",
    "binary_cross_entropy_forward",
    "multi_margin_loss_backward",
    "multi_margin_loss_forward",
])


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
    dout = _upstream(dout, dtype, reduction, input.shape)
    # torch's order of operations (upstream first, weight, then the mean's division), so the
    # huge gradients at p in {0, 1} agree with torch's to the last bit.
    grad_input = dout * (input - target) / denominator
    if weight is not None:
        grad_input = grad_input * weight
    if reduction == "mean":
        grad_input = grad_input / dtype.type(input.size)
    return (np.asarray(grad_input, dtype=dtype),)
