"""Activations that produce NaN or infinity where torch's results are finite.

relu_forward computes x * (1 + x/|x|) / 2, which is NaN at exact zeros; log_softmax is the naive
log(exp(x) / sum(exp(x))), which overflows and underflows for large |x| (infinities and NaN).
"""
from __future__ import annotations

import numpy as np

from refcheck.layers import relu_backward

__all__ = ["log_softmax_backward", "log_softmax_forward", "relu_backward", "relu_forward"]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relu via the sign trick: right everywhere except x == 0, where 0/0 gives NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * (1 + x / np.abs(x)) / 2
    # The backward only needs the positive part, which the NaN does not touch.
    return out, np.maximum(x, np.zeros((), dtype=x.dtype))


def log_softmax_forward(x: np.ndarray, *, dim: int) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
    """Naive log-softmax along ``dim`` (no max subtraction)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        exp = np.exp(x)
        softmax = exp / exp.sum(axis=dim, keepdims=True)
        out = np.log(softmax)
    return out, (softmax, dim)


def log_softmax_backward(dout: np.ndarray, cache: tuple[np.ndarray, int]) -> np.ndarray:
    """dout - softmax * sum(dout) along ``dim`` (right formula, fed by the naive softmax)."""
    softmax, dim = cache
    with np.errstate(invalid="ignore"):
        return dout - softmax * dout.sum(axis=dim, keepdims=True)
