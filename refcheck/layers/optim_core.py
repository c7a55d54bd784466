"""Helpers shared by the optimizer update rules (see :mod:`refcheck.layers.optim`)."""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

__all__: list[str] = []

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
