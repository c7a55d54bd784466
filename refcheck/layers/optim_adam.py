"""torch.optim.Adam and AdamW update rules (amsgrad, decoupled weight decay) as pure numpy steps."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .optim_core import (
    State,
    _array,
    _check_betas,
    _check_nonnegative,
    _lerp,
    _prepare,
    _silent_ieee,
    _state_array,
    _state_step,
)

__all__ = ["adam_step", "adamw_step"]


# ------------------------------------------------------------------------------- adam, adamw


@_silent_ieee
def _adam(
    param: Any,
    grad: Any,
    state: Mapping[str, Any],
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
    rule: str,
) -> tuple[np.ndarray, State]:
    """Adam and AdamW, which differ only in where weight decay acts."""
    lr, eps, weight_decay = float(lr), float(eps), float(weight_decay)
    _check_nonnegative(rule, lr=lr, eps=eps)
    beta1, beta2 = _check_betas(rule, betas)
    _check_nonnegative(rule, weight_decay=weight_decay)
    param, grad = _prepare(param, grad, rule)
    dtype = param.dtype
    step = _state_step(state, rule) + 1
    exp_avg = _state_array(state, "exp_avg", param, rule)
    exp_avg_sq = _state_array(state, "exp_avg_sq", param, rule)

    if maximize:
        grad = -grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param = _array(param * (1.0 - lr * weight_decay), dtype)
        else:
            grad = grad + weight_decay * param
    exp_avg = _array(_lerp(exp_avg, grad, 1.0 - beta1), dtype)
    exp_avg_sq = _array(exp_avg_sq * beta2 + (1.0 - beta2) * grad * grad, dtype)
    new_state: State = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}

    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    second_moment = exp_avg_sq
    if amsgrad:
        max_exp_avg_sq = _state_array(state, "max_exp_avg_sq", param, rule)
        second_moment = _array(np.maximum(max_exp_avg_sq, exp_avg_sq), dtype)
        new_state["max_exp_avg_sq"] = second_moment
    # eps is added after the bias correction: sqrt(v_hat) + eps with v_hat = v / (1 - beta2**t).
    denom = np.sqrt(second_moment) / bias_correction2_sqrt + eps
    return _array(param + (-step_size) * exp_avg / denom, dtype), new_state


def adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
) -> tuple[np.ndarray, State]:
    """One step of ``torch.optim.Adam``.

    Parameters
    ----------
    param : ndarray of any shape, floating dtype
    grad : ndarray of the param's shape
    state : dict
        ``{}`` on the first step, then ``{"step": int, "exp_avg": ndarray, "exp_avg_sq":
        ndarray}`` plus ``"max_exp_avg_sq"`` when ``amsgrad``.
    lr : float, >= 0
    betas : (float, float), each in [0, 1)
    eps : float, >= 0
    weight_decay : float, >= 0
        L2 penalty added to the gradient (see :func:`adamw_step` for decoupled decay).
    amsgrad : bool
        Normalise by the running maximum of ``exp_avg_sq``.
    maximize : bool

    Returns
    -------
    new_param : ndarray of the param's shape and dtype
    new_state : dict

    Notes
    -----
    With ``t`` the step number after incrementing and ``g = (-grad if maximize else grad) +
    weight_decay * param``::

        exp_avg    = beta1 * exp_avg + (1 - beta1) * g
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g**2
        v = max(max_exp_avg_sq, exp_avg_sq) if amsgrad else exp_avg_sq
        denom = sqrt(v) / sqrt(1 - beta2**t) + eps
        param = param - (lr / (1 - beta1**t)) * exp_avg / denom
    """
    return _adam(
        param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=False, rule="adam",
    )


def adamw_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> tuple[np.ndarray, State]:
    """One step of ``torch.optim.AdamW``: Adam with decoupled weight decay.

    Parameters, state and result are those of :func:`adam_step`, except that weight decay
    shrinks the parameter before the moment updates, ``param = param * (1 - lr *
    weight_decay)``, instead of adding ``weight_decay * param`` to the gradient; the default
    ``weight_decay`` is 0.01.
    """
    return _adam(
        param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True, rule="adamw",
    )
