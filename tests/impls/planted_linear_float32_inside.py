"""linear that casts everything to float32 inside and the results back to the input's dtype.

Right for float32 cases; float64 cases lose about eight digits, which the tolerance rule (a few
hundred float64 epsilons) must catch in every tensor.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["linear_backward", "linear_forward"]


def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None
                   ) -> tuple[np.ndarray, tuple[Any, ...]]:
    """x (..., in) @ weight (out, in).T + bias (out,) -> (..., out), computed in float32."""
    x32, weight32 = x.astype(np.float32), weight.astype(np.float32)
    out = x32 @ weight32.T
    if bias is not None:
        out = out + bias.astype(np.float32)
    return out.astype(x.dtype), (x32, weight32, bias is not None, x.dtype)


def linear_backward(dout: np.ndarray, cache: tuple[Any, ...]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(grad_input (..., in), grad_weight (out, in), grad_bias (out,) | None), computed in float32."""
    x32, weight32, has_bias, dtype = cache
    dout32 = dout.astype(np.float32)
    dout_rows = dout32.reshape(-1, dout32.shape[-1])
    x_rows = x32.reshape(-1, x32.shape[-1])
    grad_bias = dout_rows.sum(axis=0).astype(dtype) if has_bias else None
    return (dout32 @ weight32).astype(dtype), (dout_rows.T @ x_rows).astype(dtype), grad_bias
