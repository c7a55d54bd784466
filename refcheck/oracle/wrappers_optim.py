"""torch.optim as the reference of the update rules ``sgd``, ``rmsprop``, ``adam`` and ``adamw``.

Each wrapper takes the spec's tensors, the initial ``param`` and the stacked ``grads`` (one per
step), and the hyperparameters as keywords; it runs the torch.optim optimizer on a copy of the
parameter on its single-tensor path (``foreach=False``), one ``step()`` per gradient, and returns
the parameter after each step followed by the optimizer's state entries after the last step, in
the spec's order (:data:`refcheck.specs.optim_specs.STATE_KEYS`; None for an entry torch does not
keep, SGD's momentum buffer without momentum).
"""
from __future__ import annotations

from typing import Any

import torch

from ..specs.optim_specs import STATE_KEYS

__all__ = ["adam", "adamw", "rmsprop", "sgd"]

_OPTIMIZERS = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
               "adamw": torch.optim.AdamW}


def _steps(rule: str, param: torch.Tensor, grads: torch.Tensor, hparams: dict[str, Any]) -> tuple[Any, ...]:
    tensor = param.detach().clone().requires_grad_(True)
    optimizer = _OPTIMIZERS[rule]([tensor], foreach=False, **hparams)
    after_each = []
    for grad in grads:
        tensor.grad = grad.detach().clone()
        optimizer.step()
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
