"""Update-rule mistakes (sgd, rmsprop, adam, adamw).

Each mistake is recomputed in float64 numpy from the case's inputs (the initial parameter and the
gradient of every step), over the same steps with the state carried, and compared with the
user's parameter after each step and state after the last:

- Adam (and AdamW) without bias correction: ``m / (sqrt(v) + eps)`` instead of
  ``m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta1**t)``, ``v_hat = v / (1 - beta2**t)``;
- eps inside the square root (Adam, AdamW, RMSprop): ``sqrt(v_hat + eps)`` instead of
  ``sqrt(v_hat) + eps``;
- weight decay coupled the wrong way: AdamW's decay added to the gradient as an L2 term (Adam's
  way), or Adam's L2 term applied as AdamW's decoupled decay of the parameter;
- SGD's ``nesterov=True`` ignored (plain momentum).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic

__all__ = ["OPTIM_CHECKS"]

Trajectory = dict[str, np.ndarray]


def _sgd(hp: Mapping[str, Any], param: np.ndarray, grads: np.ndarray, *, nesterov: bool) -> Trajectory:
    out: Trajectory = {}
    buf = None
    for step, grad in enumerate(grads, start=1):
        g = -grad if hp["maximize"] else grad
        g = g + hp["weight_decay"] * param
        if hp["momentum"] != 0:
            buf = g if buf is None else hp["momentum"] * buf + (1 - hp["dampening"]) * g
            g = g + hp["momentum"] * buf if nesterov else buf
        param = param - hp["lr"] * g
        out[f"param_step{step}"] = param
    if buf is not None:
        out["state_momentum_buffer"] = buf
    return out


def _rmsprop(hp: Mapping[str, Any], param: np.ndarray, grads: np.ndarray, *, eps_inside: bool) -> Trajectory:
    out: Trajectory = {}
    alpha, eps = hp["alpha"], hp["eps"]
    square_avg, grad_avg, buf = (np.zeros_like(param) for _ in range(3))
    for step, grad in enumerate(grads, start=1):
        g = (-grad if hp["maximize"] else grad) + hp["weight_decay"] * param
        square_avg = alpha * square_avg + (1 - alpha) * g * g
        variance = square_avg
        if hp["centered"]:
            grad_avg = alpha * grad_avg + (1 - alpha) * g
            variance = square_avg - grad_avg * grad_avg
        avg = np.sqrt(variance + eps) if eps_inside else np.sqrt(variance) + eps
        if hp["momentum"] > 0:
            buf = hp["momentum"] * buf + g / avg
            param = param - hp["lr"] * buf
        else:
            param = param - hp["lr"] * g / avg
        out[f"param_step{step}"] = param
    out["state_square_avg"] = square_avg
    if hp["momentum"] > 0:
        out["state_momentum_buffer"] = buf
    if hp["centered"]:
        out["state_grad_avg"] = grad_avg
    return out


def _adam(hp: Mapping[str, Any], param: np.ndarray, grads: np.ndarray, *, decoupled: bool,
          bias_correction: bool = True, eps_inside: bool = False) -> Trajectory:
    out: Trajectory = {}
    (beta1, beta2), eps, lr, decay = hp["betas"], hp["eps"], hp["lr"], hp["weight_decay"]
    exp_avg, exp_avg_sq, max_sq = (np.zeros_like(param) for _ in range(3))
    for step, grad in enumerate(grads, start=1):
        g = -grad if hp["maximize"] else grad
        if decoupled:
            param = param * (1 - lr * decay)
        else:
            g = g + decay * param
        exp_avg = beta1 * exp_avg + (1 - beta1) * g
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
        max_sq = np.maximum(max_sq, exp_avg_sq)
        second = max_sq if hp["amsgrad"] else exp_avg_sq
        first = exp_avg
        if bias_correction:
            first, second = first / (1 - beta1**step), second / (1 - beta2**step)
        denom = np.sqrt(second + eps) if eps_inside else np.sqrt(second) + eps
        param = param - lr * first / denom
        out[f"param_step{step}"] = param
    out.update(state_exp_avg=exp_avg, state_exp_avg_sq=exp_avg_sq)
    if hp["amsgrad"]:
        out["state_max_exp_avg_sq"] = max_sq
    return out


def _variant(context: Context, **change: bool) -> Trajectory:
    """The case's trajectory in float64 with one mistake made (``change``: the mistake's flag)."""
    hp, layer = context.hparams, context.layer
    param, grads = context.wide("param"), context.wide("grads")
    with np.errstate(all="ignore"):
        if layer == "sgd":
            return _sgd(hp, param, grads, **change)
        if layer == "rmsprop":
            return _rmsprop(hp, param, grads, **change)
        return _adam(hp, param, grads, **{"decoupled": layer == "adamw", **change})


def _explained(context: Context, tensor: str, **change: bool) -> bool:
    return context.explains(tensor, _variant(context, **change).get(tensor))


def missing_bias_correction(context: Context, tensor: str) -> str | None:
    if context.layer not in ("adam", "adamw") or not _explained(context, tensor, bias_correction=False):
        return None
    return ("Adam without bias correction: divide exp_avg by (1 - beta1**t) and exp_avg_sq by (1 - beta2**t), "
            "t counting steps from 1, before the update (param -= lr * m_hat / (sqrt(v_hat) + eps))")


def eps_inside_sqrt(context: Context, tensor: str) -> str | None:
    if context.layer == "sgd" or not _explained(context, tensor, eps_inside=True):
        return None
    moment = "square_avg" if context.layer == "rmsprop" else "v_hat"
    return (f"eps inside the square root: torch adds eps after it, sqrt({moment}) + eps, "
            f"not sqrt({moment} + eps)")


def weight_decay_coupling(context: Context, tensor: str) -> str | None:
    if context.layer not in ("adam", "adamw") or context.hparams["weight_decay"] == 0:
        return None
    if not _explained(context, tensor, decoupled=context.layer != "adamw"):
        return None
    if context.layer == "adamw":
        return ("weight decay applied as an L2 term (weight_decay * param added to the gradient, as Adam does); "
                "AdamW decouples it: param *= 1 - lr * weight_decay before the moment updates")
    return ("weight decay decoupled as in AdamW (param *= 1 - lr * weight_decay); torch's Adam adds it to the "
            "gradient as an L2 term: grad + weight_decay * param")


def nesterov_ignored(context: Context, tensor: str) -> str | None:
    if context.layer != "sgd" or not context.hparams["nesterov"] or not _explained(context, tensor, nesterov=False):
        return None
    return "nesterov=True ignored: a Nesterov step follows grad + momentum * buf, not the momentum buffer buf itself"


_ALL = "param_step1", "param_step2", "param_step3", "param_step4", "param_step5", "state_momentum_buffer", \
    "state_square_avg", "state_grad_avg", "state_exp_avg", "state_exp_avg_sq", "state_max_exp_avg_sq"

OPTIM_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (_ALL, missing_bias_correction),
    (_ALL, eps_inside_sqrt),
    (_ALL, weight_decay_coupling),
    (_ALL, nesterov_ignored),
    (_ALL, float32_arithmetic),
]
"""The update-rule checks in the order they are tried: (tensors each applies to, check). The
float32 check comes last: a mistake small against the parameter (a missing bias correction late
in a run) can look like float32 rounding, and with huge gradients torch's own float32 run
overflows, so that anything would pass for float32-accurate."""
