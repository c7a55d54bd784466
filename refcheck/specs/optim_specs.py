"""Specs of the optimizer update rules: ``sgd``, ``rmsprop``, ``adam`` and ``adamw``.

An update rule is not a forward/backward pair but a pure step (see the README's contract)::

    <rule>_step(param, grad, state, **hyperparameters) -> (new_param, new_state)

A case runs ``STEPS`` consecutive steps with the state carried from one to the next. Its tensors
are the initial ``param`` and ``grads``, the gradient of every step stacked on a leading axis
(``(STEPS, *param.shape)``). Its compared tensors are the parameter after each step
(``param_step1`` ... ``param_step5``) and the state entries after the last step, named
``state_<torch.optim's key>`` (``state_momentum_buffer``, ``state_exp_avg``, ...); an entry torch
does not keep for the case's hyperparameters (SGD's buffer without momentum) is absent. Nothing is
differentiated. Hyperparameters are torch.optim's, with its defaults and its validity rules; the
torch call is :mod:`refcheck.oracle.wrappers_optim` (torch.optim on its single-tensor path).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .layer_specs import Hyper, InvalidConfig, LayerSpec

__all__ = ["OPTIM_SPECS", "STATE_KEYS", "STEPS"]

Shape = tuple[int, ...]

STEPS = 5
"""Consecutive steps per case."""

STATE_KEYS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum_buffer",),
    "rmsprop": ("square_avg", "momentum_buffer", "grad_avg"),
    "adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
}
"""torch.optim's array state of each rule, in the order the compared tensors list them."""

_PARAM_OUTPUTS = tuple(f"param_step{k}" for k in range(1, STEPS + 1))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfig(message)


def _nonnegative(hp: Mapping[str, Any], *names: str) -> None:
    for name in names:
        _check(hp[name] >= 0, f"Invalid {name} value: {hp[name]} (torch.optim needs {name} >= 0)")


def _present(rule: str, hp: Mapping[str, Any]) -> dict[str, bool]:
    """Which state entries torch keeps for these hyperparameters."""
    if rule == "sgd":
        return {"momentum_buffer": hp["momentum"] != 0}
    if rule == "rmsprop":
        return {"square_avg": True, "momentum_buffer": hp["momentum"] > 0, "grad_avg": bool(hp["centered"])}
    return {"exp_avg": True, "exp_avg_sq": True, "max_exp_avg_sq": bool(hp["amsgrad"])}


def _validate(rule: str, hp: Mapping[str, Any]) -> None:
    if rule == "sgd":
        _nonnegative(hp, "lr", "momentum", "weight_decay")
        _check(not hp["nesterov"] or (hp["momentum"] > 0 and hp["dampening"] == 0),
               "Nesterov momentum requires a momentum and zero dampening")
    elif rule == "rmsprop":
        _nonnegative(hp, "lr", "alpha", "eps", "momentum", "weight_decay")
    else:
        _nonnegative(hp, "lr", "eps", "weight_decay")
        betas = hp["betas"]
        _check(isinstance(betas, tuple) and len(betas) == 2, f"betas must be a pair, got {betas!r}")
        for index, beta in enumerate(betas):
            _check(0.0 <= beta < 1.0, f"Invalid beta parameter at index {index}: {beta}")


def _shapes_of(rule: str):
    def output_shape(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> dict[str, Shape | None]:
        param, grads = tuple(shapes["param"]), tuple(shapes["grads"])
        _check(grads == (STEPS, *param), f"grads must be ({STEPS}, *param.shape), got {grads} for param {param}")
        _validate(rule, hp)
        present = _present(rule, hp)
        out: dict[str, Shape | None] = {name: param for name in _PARAM_OUTPUTS}
        out.update({f"state_{key}": param if present[key] else None for key in STATE_KEYS[rule]})
        return out

    return output_shape


_MAXIMIZE = Hyper("maximize", False)
_ADAM_HYPERS = (Hyper("betas", (0.9, 0.999)), Hyper("eps", 1e-8))


def _spec(rule: str, hypers: tuple[Hyper, ...]) -> LayerSpec:
    outputs = _PARAM_OUTPUTS + tuple(f"state_{key}" for key in STATE_KEYS[rule])
    return LayerSpec(rule, "optimizer", ("param", "grads"), (), hypers, _shapes_of(rule),
                     torch_function=f"refcheck.oracle.wrappers_optim.{rule}", outputs=outputs,
                     differentiable_outputs=())


OPTIM_SPECS = (
    _spec("sgd", (Hyper("lr", 1e-3), Hyper("momentum", 0.0), Hyper("dampening", 0.0), Hyper("nesterov", False),
                  Hyper("weight_decay", 0.0), _MAXIMIZE)),
    _spec("rmsprop", (Hyper("lr", 1e-2), Hyper("alpha", 0.99), Hyper("eps", 1e-8), Hyper("weight_decay", 0.0),
                      Hyper("momentum", 0.0), Hyper("centered", False), _MAXIMIZE)),
    _spec("adam", (Hyper("lr", 1e-3), *_ADAM_HYPERS, Hyper("weight_decay", 0.0), Hyper("amsgrad", False), _MAXIMIZE)),
    _spec("adamw", (Hyper("lr", 1e-3), *_ADAM_HYPERS, Hyper("weight_decay", 1e-2), Hyper("amsgrad", False),
                    _MAXIMIZE)),
)
