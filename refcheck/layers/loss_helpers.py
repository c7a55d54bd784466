"""Shared pieces of the loss layers: reduction checks, the upstream gradient, element-wise reductions."""
from __future__ import annotations

import numpy as np

__all__: list[str] = []  # private helpers of the loss modules

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
