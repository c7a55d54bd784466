"""Mistakes of the losses with class weights: the weighted mean divided by the number of targets
instead of the sum of their weights (nll_loss, cross_entropy), and cross_entropy's label smoothing
without the class weights; plus the scale mistakes of :mod:`refcheck.diagnosis.losses` where the
loss is reduced to a scalar."""
from __future__ import annotations

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic
from .losses import scale_mistakes

__all__ = ["WEIGHTED_LOSS_CHECKS"]


def _kept_targets(context: Context) -> tuple[np.ndarray, np.ndarray]:
    """The kept targets' class indices and weights (ignore_index left out)."""
    target = np.asarray(context.tensors["target"]).reshape(-1)
    kept = target[target != context.hparams.get("ignore_index", -100)]
    return kept, context.wide("weight")[kept]


def weighted_mean_by_count(context: Context, tensor: str) -> str | None:
    """reduction='mean' with class weights divided by the number of kept targets."""
    if context.hparams["reduction"] != "mean" or context.tensors.get("weight") is None:
        return None
    kept, weights = _kept_targets(context)
    if kept.size == 0:
        return None
    factor = float(weights.sum()) / kept.size
    if context.explains(tensor, context.reference(tensor) * factor):
        return (f"weighted mean divided by the number of targets ({kept.size}): torch divides by the sum of "
                f"the targets' class weights, sum_n weight[target_n] ({weights.sum():.4g})")
    return None


def smoothing_unweighted(context: Context, tensor: str) -> str | None:
    """cross_entropy's uniform (label-smoothing) part computed without the class weights."""
    if context.tensors.get("weight") is None or context.hparams.get("label_smoothing", 0.0) == 0:
        return None
    candidate = context.torch("smoothing_unweighted", hparams={"variant": "smoothing_unweighted"}).get(tensor)
    if context.explains(tensor, candidate):
        return ("label smoothing without the class weights: torch weighs each class of the uniform part, "
                "-(e / C) sum_c weight[c] log p[n, c]")
    return None


def scalar_scale_mistakes(context: Context, tensor: str) -> str | None:
    """The scale mistakes of a reduced loss (a wrong divisor, dout ignored, a flipped sign)."""
    if context.hparams.get("reduction") == "none":
        return None
    return scale_mistakes(context, tensor)


_TENSORS = ("output", "grad_input", "grad_weight")

def softmax_loss_overflow(context: Context, tensor: str) -> str | None:
    """cross_entropy's softmax taken without subtracting the max: non-finite where torch's loss and
    gradient are finite, on inputs whose unshifted exp overflows (or whose ratio underflows to 0)."""
    if context.layer != "cross_entropy" or context.tensors.get("input") is None:
        return None
    result, reference = context.result(tensor), context.reference(tensor)
    if result is None or reference is None or not np.isfinite(reference).all():
        return None
    if np.isfinite(np.asarray(result, dtype=np.float64)).all():
        return None
    x = context.wide("input").astype(context.dtype)
    with np.errstate(all="ignore"):
        e = np.exp(x)
        naive = np.log(e / e.sum(axis=1 if x.ndim > 1 else 0, keepdims=True))
    if np.isfinite(naive).all():
        return None
    return ("exp taken without subtracting the max: the softmax overflows, or its ratio underflows to 0 "
            "(log(0) = -inf), on large inputs; subtract each row's max first (log_softmax(x) = log_softmax(x - max))")


WEIGHTED_LOSS_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (_TENSORS, softmax_loss_overflow),
    (_TENSORS, float32_arithmetic),
    (_TENSORS, weighted_mean_by_count),
    (_TENSORS, smoothing_unweighted),
    (_TENSORS, scalar_scale_mistakes),
]
"""The checks of the losses with weights and of the newer losses, in the order they are tried."""
