"""torch.optim.SGD's update rule (momentum, dampening, Nesterov, weight decay) as a pure numpy step."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .optim_core import State, _array, _prepare, _silent_ieee, _state_array

__all__ = ["sgd_step"]


# ---------------------------------------------------------------------------------------- sgd


@_silent_ieee
def sgd_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    *,
    lr: float = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, State]:
    """One step of ``torch.optim.SGD``.

    Parameters
    ----------
    param : ndarray of any shape, floating dtype
    grad : ndarray of the param's shape
        Converted to the param's dtype.
    state : dict
        ``{}`` on the first step, then the state returned by the previous step:
        ``{"momentum_buffer": ndarray}`` when ``momentum != 0``, else ``{}``.
    lr : float, >= 0
    momentum : float, >= 0
    dampening : float
        Any value; applied from the second step on.
    nesterov : bool
        Requires ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float, >= 0
        L2 penalty added to the gradient.
    maximize : bool
        Ascend instead of descend (negates the gradient).

    Returns
    -------
    new_param : ndarray of the param's shape and dtype
    new_state : dict

    Notes
    -----
    With ``g = (-grad if maximize else grad) + weight_decay * param``::

        buf = g                                        (first step)
        buf = momentum * buf + (1 - dampening) * g     (later steps)
        d   = g + momentum * buf if nesterov else buf  (d = g when momentum == 0)
        param = param - lr * d
    """
    lr, momentum, dampening, weight_decay = map(float, (lr, momentum, dampening, weight_decay))
    # torch.optim.SGD checks with `<`, so NaN passes these three.
    if lr < 0.0:
        raise ValueError(f"sgd: Invalid learning rate: {lr}")
    if momentum < 0.0:
        raise ValueError(f"sgd: Invalid momentum value: {momentum}")
    if weight_decay < 0.0:
        raise ValueError(f"sgd: Invalid weight_decay value: {weight_decay}")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("sgd: Nesterov momentum requires a momentum and zero dampening")
    param, grad = _prepare(param, grad, "sgd")
    dtype = param.dtype

    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + weight_decay * param
    new_state: State = {}
    if momentum != 0:
        if state.get("momentum_buffer") is None:
            # torch starts the buffer at the gradient itself, without the (1 - dampening).
            buf = np.array(grad, dtype=dtype, copy=True)
        else:
            previous = _state_array(state, "momentum_buffer", param, "sgd")
            buf = _array(previous * momentum + (1.0 - dampening) * grad, dtype)
        new_state["momentum_buffer"] = buf
        grad = grad + momentum * buf if nesterov else buf
    return _array(param + (-lr) * grad, dtype), new_state
