"""torch.optim as the reference of the update rules ``sgd``, ``rmsprop``, ``adam`` and ``adamw``.

Each wrapper takes the spec's tensors, the initial ``param`` and the stacked ``grads`` (one per
step), and the hyperparameters as keywords; it runs the torch.optim optimizer on a copy of the
parameter on its single-tensor path (``foreach=False``), one ``step()`` per gradient, and returns
the parameter after each step followed by the optimizer's state entries after the last step, in
the spec's order (:data:`refcheck.specs.optim_specs.STATE_KEYS`; None for an entry torch does not
keep, SGD's momentum buffer without momentum).

torch.optim keeps its optimizers out of torch.compile by importing torch._dynamo on their first
use (about 0.8 s in every oracle process). Nothing is compiled here, so the wrappers run each
step's own body under no_grad, which is what ``step()`` runs outside compilation (with no hooks
registered) (:func:`_step_body`), and an oracle process tells ``add_param_group`` that it is already
excluded (:func:`without_compiler_import`, called at its start only: it changes torch for the whole
process). Either falls back to torch's own path when torch is shaped differently.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from ..specs.optim_specs import STATE_KEYS

__all__ = ["adam", "adamw", "rmsprop", "sgd", "without_compiler_import"]

_OPTIMIZERS = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
               "adamw": torch.optim.AdamW}


def without_compiler_import() -> None:
    """Mark Optimizer's methods that torch wraps with ``torch._compile._disable_dynamo`` as already
    excluded from compilation (the wrapper keeps that mark on the wrapped function), so their first
    call does not import torch._dynamo."""
    try:
        wrapper_code = torch._compile._disable_dynamo(lambda: None).__code__
    except AttributeError:  # another torch: its own path, dynamo imported
        return
    for value in vars(torch.optim.Optimizer).values():
        wrapped = getattr(value, "__wrapped__", None)
        if wrapped is not None and getattr(value, "__code__", None) is wrapper_code:
            if getattr(wrapped, "__dynamo_disable", None) is None:
                setattr(wrapped, "__dynamo_disable", wrapped)


def _step_body(optimizer: torch.optim.Optimizer) -> Callable[[], Any]:
    """``optimizer.step`` without its wrappers (profiling, hooks, a graph break for the compiler),
    under no_grad as ``step`` runs it; ``optimizer.step`` itself when the body is not found or
    the optimizer is differentiable."""
    body = inspect.unwrap(type(optimizer).step)
    owners = {f"{klass.__name__}.step" for klass in type(optimizer).__mro__}  # AdamW runs Adam.step
    if body.__qualname__ not in owners or not body.__module__.startswith("torch.optim") \
            or optimizer.defaults.get("differentiable"):
        return optimizer.step

    def step() -> Any:
        with torch.no_grad():
            return body(optimizer)

    return step



def _steps(rule: str, param: torch.Tensor, grads: torch.Tensor, hparams: dict[str, Any]) -> tuple[Any, ...]:
    tensor = param.detach().clone().requires_grad_(True)
    optimizer = _OPTIMIZERS[rule]([tensor], foreach=False, **hparams)
    step = _step_body(optimizer)
    after_each = []
    for grad in grads:
        tensor.grad = grad.detach().clone()
        step()
        after_each.append(tensor.detach().clone())
    state = optimizer.state[tensor]
    entries = [state[key].detach().clone() if state.get(key) is not None else None for key in STATE_KEYS[rule]]
    return (*after_each, *entries)


def sgd(param, grads, **hparams):
    return _steps("sgd", param, grads, hparams)


def rmsprop(param, grads, **hparams):
    return _steps("rmsprop", param, grads, hparams)


def adam(param, grads, **hparams):
    return _steps("adam", param, grads, hparams)


def adamw(param, grads, **hparams):
    return _steps("adamw", param, grads, hparams)
