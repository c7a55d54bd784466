"""The torch twin of a model file's network (trusted side): torch.nn.functional layers, autograd
and torch.optim, trained for the same steps on the same data and parameters.

``twin_trajectory`` runs in an oracle worker. It returns, per step, what the user's side returns
(the loss, each parameter's gradient, the parameters after the step, every layer's output and
input gradient) twice: in float64 (the reference) and at the checked dtype (torch's own error).
The model arrives as the network stage's parsed model file; only its plain fields are read.
"""
from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..specs import LAYERS

__all__ = ["OPTIMIZERS", "twin_trajectory"]

OPTIMIZERS = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"}


def _function(layer: str) -> Any:
    module_name, _, function_name = LAYERS[layer].torch_function.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


def _numpy(value: torch.Tensor | None) -> np.ndarray | None:
    return None if value is None else value.detach().numpy().copy()


def _forward(model: Any, leaves: Mapping[str, torch.Tensor], x: torch.Tensor, target: torch.Tensor,
             reg: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    outputs = []
    activation = x
    for entry in model.layers:
        args = []
        for name in LAYERS[entry.layer].tensors:
            if name == "input":
                args.append(activation)
            elif name in entry.names:
                args.append(leaves[entry.names[name]])
            elif name == "target":
                args.append(target)
            else:
                args.append(None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            activation = _function(entry.layer)(*args, **dict(entry.hparams))
        if activation.requires_grad:
            activation.retain_grad()
        outputs.append(activation)
    loss = outputs[-1]
    if reg:
        penalty = sum((leaves[name] ** 2).sum() for name in model.regularised)
        loss = loss + model.reg_scale * reg * penalty
    return loss, outputs


def _trajectory(model: Any, arrays: Mapping[str, np.ndarray], dtype: str, reg: float) -> list[dict[str, Any]]:
    torch_dtype = getattr(torch, dtype)
    leaves = {name: torch.tensor(np.asarray(arrays[name], dtype=np.float64), dtype=torch_dtype, requires_grad=True)
              for name in model.parameters}
    target_array = arrays["target"]
    if target_array.dtype.kind == "f":
        target = torch.tensor(np.asarray(target_array, dtype=np.float64), dtype=torch_dtype)
    else:
        target = torch.from_numpy(np.asarray(target_array, dtype=np.int64))
    if model.rule:
        optimizer = getattr(torch.optim, OPTIMIZERS[model.rule])(list(leaves.values()), foreach=False,
                                                                 **dict(model.hyper))
    else:
        optimizer = torch.optim.SGD(list(leaves.values()), lr=model.lr, foreach=False)
    steps = []
    for _ in range(model.steps):
        x = torch.tensor(np.asarray(arrays["x"], dtype=np.float64), dtype=torch_dtype, requires_grad=True)
        optimizer.zero_grad(set_to_none=True)
        loss, outputs = _forward(model, leaves, x, target, reg)
        loss.backward()
        inputs = [x, *outputs[:-1]]
        record = {"loss": _numpy(loss), "grads": {name: _numpy(leaf.grad) for name, leaf in leaves.items()},
                  "outputs": [_numpy(v) for v in outputs], "grad_inputs": [_numpy(v.grad) for v in inputs]}
        optimizer.step()
        record["updated"] = {name: _numpy(leaf) for name, leaf in leaves.items()}
        steps.append(record)
    return steps


def twin_trajectory(model: Any, arrays: Mapping[str, np.ndarray], dtype: str, reg: float = 0.0) -> dict[str, Any]:
    """The twin trained for ``model.steps`` steps: ``{"reference": [...], "at_dtype": [...]}``.

    ``arrays``: x, target and the starting parameters (torch layout) at the checked dtype; the
    reference takes the same values in float64. ``reg``: the regularisation of a model class
    (``reg_scale * reg * sum(W**2)`` over ``model.regularised`` added to the loss).
    """
    torch.set_num_threads(1)
    reference = _trajectory(model, arrays, "float64", reg)
    at_dtype = reference if dtype == "float64" else _trajectory(model, arrays, dtype, reg)
    return {"reference": reference, "at_dtype": at_dtype, "torch_version": str(torch.__version__)}
