"""torch.optim.RMSprop's update rule (plain, centered, with momentum) as a pure numpy step."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .optim_core import (
    State,
    _array,
    _check_nonnegative,
    _lerp,
    _prepare,
    _silent_ieee,
    _state_array,
    _state_step,
)

__all__ = ["rmsprop_step"]


# ------------------------------------------------------------------------------------ rmsprop


@_silent_ieee
def rmsprop_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> tuple[np.ndarray, State]:
    """One step of ``torch.optim.RMSprop``.

    Parameters
    ----------
    param : ndarray of any shape, floating dtype
    grad : ndarray of the param's shape
    state : dict
        ``{}`` on the first step, then ``{"step": int, "square_avg": ndarray}`` plus
        ``"momentum_buffer"`` when ``momentum > 0`` and ``"grad_avg"`` when ``centered``.
    lr, alpha, eps, weight_decay, momentum : float, each >= 0
        torch puts no upper bound on ``alpha``.
    centered : bool
        Normalise by an estimate of the gradient's variance instead of its second moment.
    maximize : bool

    Returns
    -------
    new_param : ndarray of the param's shape and dtype
    new_state : dict

    Notes
    -----
    With ``g = (-grad if maximize else grad) + weight_decay * param``::

        square_avg = alpha * square_avg + (1 - alpha) * g**2
        grad_avg   = alpha * grad_avg + (1 - alpha) * g              (centered)
        avg = sqrt(square_avg - grad_avg**2) + eps if centered else sqrt(square_avg) + eps
        buf = momentum * buf + g / avg;  param = param - lr * buf    (momentum > 0)
        param = param - lr * g / avg                                 (momentum == 0)
    """
    lr, alpha, eps, weight_decay, momentum = map(
        float, (lr, alpha, eps, weight_decay, momentum)
    )
    _check_nonnegative(
        "rmsprop", lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha
    )
    param, grad = _prepare(param, grad, "rmsprop")
    dtype = param.dtype
    step = _state_step(state, "rmsprop") + 1
    square_avg = _state_array(state, "square_avg", param, "rmsprop")

    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg = _array(square_avg * alpha + (1.0 - alpha) * grad * grad, dtype)
    new_state: State = {"step": step, "square_avg": square_avg}
    if centered:
        grad_avg = _state_array(state, "grad_avg", param, "rmsprop")
        grad_avg = _array(_lerp(grad_avg, grad, 1.0 - alpha), dtype)
        new_state["grad_avg"] = grad_avg
        avg = np.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg = avg + eps
    if momentum > 0:
        buf = _state_array(state, "momentum_buffer", param, "rmsprop")
        buf = _array(buf * momentum + grad / avg, dtype)
        new_state["momentum_buffer"] = buf
        new_param = param + (-lr) * buf
    else:
        new_param = param + (-lr) * grad / avg
    return _array(new_param, dtype), new_state
