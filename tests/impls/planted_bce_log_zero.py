"""binary_cross_entropy without torch's clamp of the logarithms at -100.

Right for probabilities inside (0, 1); at exactly 0 or 1 it takes log(0), so the loss and the
gradient turn inf or nan.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["binary_cross_entropy_backward", "binary_cross_entropy_forward"]


def binary_cross_entropy_forward(p: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, *,
                                 reduction: str = "mean") -> tuple[np.ndarray, tuple[Any, ...]]:
    with np.errstate(divide="ignore", invalid="ignore"):
        losses = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    if weight is not None:
        losses = losses * weight
    if reduction == "none":
        return losses.astype(p.dtype), (p, target, weight, reduction)
    total = losses.sum() if reduction == "sum" else losses.mean()
    return np.asarray(total, dtype=p.dtype), (p, target, weight, reduction)


def binary_cross_entropy_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> np.ndarray:
    p, target, weight, reduction = cache
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = (p - target) / (p * (1 - p))
    if weight is not None:
        grad = grad * weight
    if reduction == "mean":
        grad = grad / p.size
    grad = np.broadcast_to(grad, p.shape)
    return (grad * dout).astype(p.dtype)
