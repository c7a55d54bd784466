"""CS231n-style update rules (``optim.py``) mapped onto the update-rule contract.

==============================================  ===================  ======================================
CS231n function ``(w, dw, config) -> (next_w,   checked as           hyperparameters (config keys -> torch)
config)``
==============================================  ===================  ======================================
``sgd``                                         sgd, momentum 0      learning_rate -> lr
``sgd_momentum``                                sgd, momentum != 0   learning_rate -> lr, momentum
``rmsprop``                                     rmsprop              learning_rate -> lr, decay_rate ->
                                                                     alpha, epsilon -> eps
``adam``                                        adam                 learning_rate -> lr, (beta1, beta2) ->
                                                                     betas, epsilon -> eps
==============================================  ===================  ======================================

Every call gets a config with all its hyperparameters set from the case (CS231n's defaults never
apply) and its state translated from torch.optim's state; the returned config is translated back.
State, CS231n -> torch:

- ``sgd_momentum``'s ``velocity`` carries the learning rate, torch's ``momentum_buffer`` does not:
  CS231n steps ``v = momentum * v - lr * dw; w = w + v``, torch ``buf = momentum * buf + dw;
  w = w - lr * buf``, so ``v = -lr * momentum_buffer`` (exactly, while lr stays constant, as it
  does within a case) and the adapter converts with ``momentum_buffer = -velocity / lr``. A case
  with lr = 0 and momentum cannot be converted and is skipped. torch has no dampening, Nesterov
  or weight decay in CS231n's rules: those cases are outside what the functions support.
- ``rmsprop``'s ``cache`` is torch's ``square_avg``; ``adam``'s ``m``, ``v`` and ``t`` are
  ``exp_avg``, ``exp_avg_sq`` and ``step``. torch's ``step`` for rmsprop, which CS231n does not
  keep, is counted by the adapter.

The CS231n functions may update ``w`` and their config in place (the assignment's ``sgd`` does
``w -= learning_rate * dw``): the adapter hands them copies of the parameter, the gradient and the
state arrays, so that this convention is not reported as mutating the step's inputs.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from ..specs import Unsupported
from .contract import LayerFunctions, module_label

__all__ = ["adapt_cs231n_optim"]

State = dict[str, Any]


def _copy(value: Any) -> Any:
    return np.array(value, copy=True) if isinstance(value, np.ndarray) else value


def _call(function: Callable[..., Any], param: Any, grad: Any, config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The user's rule on copies of everything it is given; its ``(next_w, config)``."""
    returned = function(_copy(param), _copy(grad), {key: _copy(value) for key, value in config.items()})
    if not isinstance(returned, tuple) or len(returned) != 2 or not isinstance(returned[1], dict):
        raise TypeError(f"{function.__name__} must return (next_w, config), got {type(returned).__name__}")
    return returned


def _sgd(plain: Callable[..., Any] | None, momentum_rule: Callable[..., Any] | None) -> Callable[..., Any]:
    def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0):
        if momentum == 0 and plain is not None:
            next_w, _ = _call(plain, param, grad, {"learning_rate": lr})
            return next_w, {}
        if momentum_rule is None:
            raise Unsupported("the module has sgd but no sgd_momentum: momentum != 0 is not supported")
        if momentum != 0 and lr == 0:
            raise Unsupported("with lr = 0 CS231n's velocity (-lr * momentum_buffer) says nothing of torch's buffer")
        config: dict[str, Any] = {"learning_rate": lr, "momentum": momentum}
        if state.get("momentum_buffer") is not None:
            config["velocity"] = -lr * state["momentum_buffer"]
        next_w, config = _call(momentum_rule, param, grad, config)
        if momentum == 0:
            return next_w, {}
        velocity = config.get("velocity")
        return next_w, {"momentum_buffer": None if velocity is None else -np.asarray(velocity) / lr}

    return sgd_step


def _rmsprop(rule: Callable[..., Any]) -> Callable[..., Any]:
    def rmsprop_step(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8):
        config: dict[str, Any] = {"learning_rate": lr, "decay_rate": alpha, "epsilon": eps}
        if "square_avg" in state:
            config["cache"] = state["square_avg"]
        next_w, config = _call(rule, param, grad, config)
        return next_w, {"step": int(state.get("step", 0)) + 1, "square_avg": config.get("cache")}

    return rmsprop_step


def _adam(rule: Callable[..., Any]) -> Callable[..., Any]:
    def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        config: dict[str, Any] = {"learning_rate": lr, "beta1": betas[0], "beta2": betas[1], "epsilon": eps}
        if state:
            config.update(m=state.get("exp_avg"), v=state.get("exp_avg_sq"), t=state.get("step"))
        next_w, config = _call(rule, param, grad, config)
        return next_w, {"step": config.get("t"), "exp_avg": config.get("m"), "exp_avg_sq": config.get("v")}

    return adam_step


def _is_rule(value: Any) -> bool:
    """``(w, dw, config=None)``: three positional parameters, the last one a config."""
    if not inspect.isfunction(value):
        return False
    positional = [p for p in inspect.signature(value).parameters.values()
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 3 and positional[2].name == "config"


def adapt_cs231n_optim(module: ModuleType) -> dict[str, LayerFunctions]:
    """LayerFunctions for the CS231n update rules ``module`` defines (``sgd`` and ``sgd_momentum``
    together as torch's sgd)."""
    rules: Mapping[str, Callable[..., Any]] = {name: value for name in ("sgd", "sgd_momentum", "rmsprop", "adam")
                                               if _is_rule(value := getattr(module, name, None))}
    label = module_label(module)
    found = {}
    if "sgd" in rules or "sgd_momentum" in rules:
        names = [name for name in ("sgd", "sgd_momentum") if name in rules]
        accepted = {"lr", "momentum"} if "sgd_momentum" in rules else {"lr"}
        found["sgd"] = LayerFunctions("sgd", _sgd(rules.get("sgd"), rules.get("sgd_momentum")), None,
                                      frozenset(accepted), origin="cs231n: " + ", ".join(f"{label}.{n}" for n in names),
                                      adapter="cs231n")
    if "rmsprop" in rules:
        found["rmsprop"] = LayerFunctions("rmsprop", _rmsprop(rules["rmsprop"]), None,
                                          frozenset({"lr", "alpha", "eps"}), origin=f"cs231n: {label}.rmsprop",
                                          adapter="cs231n")
    if "adam" in rules:
        found["adam"] = LayerFunctions("adam", _adam(rules["adam"]), None, frozenset({"lr", "betas", "eps"}),
                                       origin=f"cs231n: {label}.adam", adapter="cs231n")
    return found
