"""Optimizer update rules in numpy: ``sgd``, ``rmsprop``, ``adam`` and ``adamw``, as pure steps.

An update rule has no backward. Each is one function

    ``<rule>_step(param, grad, state, *, hyperparameters) -> (new_param, new_state)``

that performs one step of the matching ``torch.optim`` optimizer on one parameter tensor.
``state`` is a dict of arrays and ints with torch.optim's key names (``{}`` before the first
step); the step returns a new parameter and a new state dict and never writes into ``param``,
``grad`` or ``state``. Hyperparameters are named and defaulted as in torch.optim, and invalid
values raise ``ValueError`` as torch.optim's constructors do.

The arithmetic follows torch.optim's single-tensor path (``foreach=False``) operation by
operation, in the parameter's dtype, so that float32 results agree with torch float32 to a few
units in the last place. Scalars derived from hyperparameters (``1 - beta2``, ``lr / (1 -
beta1**step)``, ...) are computed in Python floats and rounded to the parameter's dtype where
they meet an array, as torch does with Python-number operands.

torch's conventions reproduced here:

- SGD's first momentum step stores the (decayed) gradient itself, ``buf = g``, with no
  ``(1 - dampening)`` factor; dampening applies from the second step on. With ``momentum=0``
  there is no state at all.
- Weight decay is an L2 term added to the gradient (``g + weight_decay * param``) in SGD,
  RMSprop and Adam; only AdamW decays the parameter itself (``param * (1 - lr *
  weight_decay)``) before the moment updates.
- ``maximize`` negates the gradient first, before weight decay.
- Adam's ``eps`` is added after the bias correction of the second moment:
  ``denom = sqrt(v) / sqrt(1 - beta2**t) + eps`` and ``step_size = lr / (1 - beta1**t)``.
- RMSprop's ``eps`` is added outside the square root, ``sqrt(square_avg) + eps``; centered
  RMSprop uses ``sqrt(square_avg - grad_avg**2) + eps`` (NaN if rounding makes the difference
  negative, as in torch).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "UPDATE_RULES",
    "adam_step",
    "adamw_step",
    "rmsprop_step",
    "sgd_step",
]

State = dict[str, Any]
_Rule = TypeVar("_Rule", bound=Callable[..., Any])


# ------------------------------------------------------------------------------------ helpers


def _silent_ieee(rule: _Rule) -> _Rule:
    """Run ``rule`` with numpy's floating-point warnings off.

    torch lets overflow (``grad**2`` of a huge float32 gradient is inf), underflow and NaN
    (centered RMSprop's square root of a rounded-negative variance) pass silently; so do these
    rules, so that the special values reach the result as they do in torch.
    """

    @functools.wraps(rule)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return rule(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _prepare(param: Any, grad: Any, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """``param`` as a floating array, ``grad`` as an array of the param's shape and dtype."""
    param = np.asarray(param)
    if not np.issubdtype(param.dtype, np.floating):
        raise TypeError(f"{rule}: param must be a floating-point array, got dtype {param.dtype}")
    grad = np.asarray(grad, dtype=param.dtype)
    if grad.shape != param.shape:
        raise ValueError(f"{rule}: grad {grad.shape} must have the param's shape {param.shape}")
    return param, grad


def _state_array(
    state: Mapping[str, Any], key: str, param: np.ndarray, rule: str
) -> np.ndarray:
    """``state[key]`` as an array of the param's shape and dtype; zeros on the first step."""
    if not state:
        return np.zeros_like(param)
    if key not in state:
        raise KeyError(
            f"{rule}: state has no {key!r} (keys {sorted(state)}); pass {{}} on the first "
            "step and the returned state afterwards, with the same hyperparameters"
        )
    value = np.asarray(state[key], dtype=param.dtype)
    if value.shape != param.shape:
        raise ValueError(f"{rule}: state[{key!r}] {value.shape} must have the param's shape")
    return value


def _state_step(state: Mapping[str, Any], rule: str) -> int:
    """The number of steps already taken (torch keeps it as a float tensor; any integer works)."""
    if not state:
        return 0
    if "step" not in state:
        raise KeyError(f"{rule}: state has no 'step' (keys {sorted(state)})")
    return int(state["step"])


def _array(value: Any, dtype: np.dtype) -> np.ndarray:
    """A result as an ndarray of ``dtype`` (numpy turns 0-d arithmetic into scalars)."""
    return np.asarray(value, dtype=dtype)


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """``start + weight * (end - start)`` in torch.lerp's two-branch form.

    torch switches to ``end - (end - start) * (1 - weight)`` for weights of at least 0.5,
    which is exact at ``weight == 1``.
    """
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


def _check_nonnegative(rule: str, **values: float) -> None:
    """torch.optim's ``not 0.0 <= value`` checks (which also reject NaN)."""
    labels = {"lr": "learning rate", "eps": "epsilon value"}
    for name, value in values.items():
        if not 0.0 <= value:
            raise ValueError(f"{rule}: Invalid {labels.get(name, name + ' value')}: {value}")


def _check_betas(rule: str, betas: tuple[float, float]) -> tuple[float, float]:
    beta1, beta2 = (float(b) for b in betas)
    for index, beta in enumerate((beta1, beta2)):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{rule}: Invalid beta parameter at index {index}: {beta}")
    return beta1, beta2


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


UPDATE_RULES: dict[str, Callable[..., tuple[np.ndarray, State]]] = {
    "sgd": sgd_step,
    "rmsprop": rmsprop_step,
    "adam": adam_step,
    "adamw": adamw_step,
}
