"""Activation mistakes in the backward, each recomputed from the case's input x and upstream
gradient dout (float64, shapes as the input):

- relu's gradient passed at 0 (``x >= 0``): torch's is 0 there;
- tanh's and sigmoid's derivative taken at the input instead of the output (``1 - x**2`` for
  ``1 - y**2``, ``x * (1 - x)`` for ``y * (1 - y)``);
- softmax's (and log_softmax's) backward taken element by element, as if each output depended on
  its own input alone (``dout * y * (1 - y)``, ``dout * (1 - y)``), without the sum over the axis;
- leaky_relu's slope left out of the backward (``dout * (x > 0)``);
- elu's alpha left out of the backward (``exp(x)`` for ``alpha * exp(x)``) or its derivative taken
  as the output (``y`` for ``y + alpha``);
- silu's product rule cut short (``sigmoid(x)`` alone, or sigmoid's derivative alone);
- softplus's beta left out of the backward (``sigmoid(x)`` for ``sigmoid(beta * x)``);
- hardtanh's gradient passed at its bounds (torch's is 0 where x == min_val or x == max_val);
- softmax's and log_softmax's exp taken without subtracting the max first: inf, nan or -inf on
  large inputs where torch's result is finite.
"""
from __future__ import annotations

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic

__all__ = ["ACTIVATION_CHECKS", "ACTIVATION_LAYERS"]

ACTIVATION_LAYERS = ("relu", "leaky_relu", "tanh", "sigmoid", "softmax", "log_softmax", "elu", "silu", "softplus",
                     "hardtanh")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))  # no overflow warning for large |x|


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _candidates(context: Context) -> list[tuple[np.ndarray, str]]:
    """(what the mistake's grad_input would be, its message) for this case's layer."""
    x, dout = context.wide("input"), context.wide("dout")
    layer = context.layer
    if layer == "relu":
        return [(dout * (x >= 0), "relu's gradient at 0 passed through: torch's is 0 where x == 0 (use x > 0)")]
    if layer == "leaky_relu":
        return [(dout * (x > 0), "slope left out of the backward: grad_input = dout * negative_slope where x < 0")]
    if layer == "tanh":
        return [(dout * (1 - x ** 2), "derivative taken at the input: tanh' = 1 - y**2 with y = tanh(x), "
                                      "not 1 - x**2")]
    if layer == "sigmoid":
        return [(dout * x * (1 - x), "derivative taken at the input: sigmoid' = y * (1 - y) with y = sigmoid(x), "
                                     "not x * (1 - x)")]
    if layer == "elu":
        alpha = float(context.hparams.get("alpha", 1.0))
        y = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
        return [(dout * np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))),
                 "alpha left out of the backward: elu' = alpha * exp(x) where x <= 0, not exp(x)"),
                (dout * np.where(x > 0, 1.0, y), "derivative taken as the output where x <= 0: elu' = y + alpha "
                                                 "(= alpha * exp(x)) there, not y")]
    if layer == "silu":
        s = _sigmoid(x)
        return [(dout * s, "product rule cut short: silu(x) = x * sigmoid(x), so silu' = sigmoid(x) * (1 + x * "
                           "(1 - sigmoid(x))), not sigmoid(x)"),
                (dout * s * (1 - s), "sigmoid's derivative alone: silu(x) = x * sigmoid(x), so silu' = sigmoid(x) "
                                     "* (1 + x * (1 - sigmoid(x)))")]
    if layer == "softplus":
        linear = float(context.hparams.get("beta", 1.0)) * x > float(context.hparams.get("threshold", 20.0))
        return [(dout * np.where(linear, 1.0, _sigmoid(x)), "beta left out of the backward: softplus' = sigmoid(beta * x), not sigmoid(x)")]
    if layer == "hardtanh":
        low, high = float(context.hparams.get("min_val", -1.0)), float(context.hparams.get("max_val", 1.0))
        return [(dout * ((x >= low) & (x <= high)), "gradient passed at the bounds: torch's is 0 where x == min_val "
                                                    "or x == max_val (use min_val < x < max_val)")]
    if layer in ("softmax", "log_softmax"):
        axis = int(context.hparams.get("dim", -1) if context.hparams.get("dim") is not None else -1)
        y = _softmax(x, axis)
        if layer == "softmax":
            return [(dout * y * (1 - y), "softmax backward taken element by element (dout * y * (1 - y)): each "
                                         "output depends on every input of its axis; grad_input = y * (dout - "
                                         "sum(dout * y, axis))")]
        return [(dout * (1 - y), "log_softmax backward taken element by element (dout * (1 - y)): "
                                 "grad_input = dout - y * sum(dout, axis)")]
    return []


def _unshifted(context: Context) -> np.ndarray:
    """softmax (log_softmax) computed as written in a textbook, exp(x) / sum(exp(x)) without the
    max subtracted first, in the case's dtype: inf or nan where exp overflows, -inf where the
    ratio underflows."""
    axis = int(context.hparams.get("dim", -1) if context.hparams.get("dim") is not None else -1)
    x = context.wide("input").astype(context.dtype)
    with np.errstate(all="ignore"):
        e = np.exp(x)
        y = e / e.sum(axis=axis, keepdims=True)
        return np.log(y) if context.layer == "log_softmax" else y


def exp_overflow(context: Context, tensor: str) -> str | None:
    """Non-finite values where torch's are finite, where the unshifted formula has them too."""
    if context.layer not in ("softmax", "log_softmax"):
        return None
    output, reference = context.result("output"), context.reference("output")
    if output is None or reference is None or np.shape(output) != np.shape(reference):
        return None
    bad = ~np.isfinite(np.asarray(output, dtype=np.float64))
    naive_bad = ~np.isfinite(_unshifted(context))
    if not bad.any() or not np.isfinite(reference).all() or (bad & ~naive_bad).any():
        return None
    result = context.result(tensor)
    if tensor != "output" and (result is None or np.isfinite(np.asarray(result, dtype=np.float64)).all()):
        return None
    return (f"exp taken without subtracting the max: it overflows, or its ratio underflows, on large inputs; "
            f"subtract the max along dim first ({context.layer}(x) equals {context.layer}(x - max(x)))")


def activation_backward(context: Context, tensor: str) -> str | None:
    """grad_input equal to what one of the mistakes above gives."""
    for candidate, message in _candidates(context):
        if context.explains(tensor, candidate):
            return message
    return None


ACTIVATION_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_input"), exp_overflow),
    (("grad_input",), activation_backward),
    (("output", "grad_input"), float32_arithmetic),
]
