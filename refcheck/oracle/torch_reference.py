"""The reference: torch.nn.functional with torch.autograd.

This is the only module on the checking path that imports torch. It runs a layer in float64 (the
reference every implementation is compared with) and at the case's dtype (torch's own error, shown
next to the implementation's so a reader sees whether a gap is noise or a bug).
"""
from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..specs import LAYERS
from .precise import PRECISE

__all__ = ["torch_accepts", "torch_results", "use_one_thread"]


def use_one_thread() -> int:
    """One torch thread in this process (a worker pool is the parallelism); returns the count before."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    return previous


def set_torch_threads(count: int) -> None:
    """Give torch back the thread count :func:`use_one_thread` replaced."""
    torch.set_num_threads(count)


def _torch_function(layer: str):
    module_name, _, function_name = LAYERS[layer].torch_function.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


def torch_results(layer: str, tensors: Mapping[str, np.ndarray | None], hparams: Mapping[str, Any],
                  upstream: np.ndarray | Mapping[str, np.ndarray] | None, dtype: str = "float64", *,
                  precise: bool = False) -> dict[str, np.ndarray | None]:
    """Run torch on the given tensors at ``dtype``: the outputs and, with ``upstream``, the gradients.

    ``upstream``: the upstream gradient of a one-output layer, or ``{output name: gradient}``.
    Returns numpy arrays keyed by compared-tensor name (``output``, ``grad_input``, ...); the
    gradient of an absent optional tensor is None. Integer and boolean tensors keep their type, and so
    does any boolean array. ``precise``: the cancellation-free function of :mod:`.precise` where the
    layer has one (the float64 reference), else torch's own.
    """
    spec = LAYERS[layer]
    torch_dtype = getattr(torch, dtype)
    args, leaves = [], {}
    for name in spec.tensors:
        value = tensors[name]
        if value is None:
            args.append(None)
        elif name in spec.integer:
            args.append(torch.from_numpy(np.asarray(value, dtype=np.int64)))
        elif name in spec.boolean or np.asarray(value).dtype == np.bool_:
            # A boolean array stays boolean (an attention mask is boolean in some cases, additive in others).
            args.append(torch.from_numpy(np.asarray(value, dtype=bool)))
        else:
            leaf = torch.tensor(np.asarray(value, dtype=np.float64), dtype=torch_dtype,
                                requires_grad=name in spec.differentiable)
            leaves[name] = leaf
            args.append(leaf)
    with warnings.catch_warnings():
        # e.g. padding='same' with an even kernel warns about an extra padded copy.
        warnings.simplefilter("ignore")
        function = PRECISE[layer] if precise and layer in PRECISE else _torch_function(layer)
        returned = function(*args, **dict(hparams))
    produced = dict(zip(spec.outputs, returned)) if spec.multi_output else {spec.outputs[0]: returned}
    results: dict[str, np.ndarray | None] = {
        name: None if value is None else value.detach().numpy().copy() for name, value in produced.items()}
    if upstream is None:
        return results
    gradients = upstream if isinstance(upstream, Mapping) else {spec.differentiable_outputs[0]: upstream}
    targets = [(produced[name], gradients[name]) for name in spec.differentiable_outputs
               if produced.get(name) is not None and gradients.get(name) is not None and produced[name].requires_grad]
    wanted = [n for n in spec.differentiable if n in leaves]
    by_name: dict[str, Any] = {}
    if targets and wanted:
        grads = torch.autograd.grad(
            [out for out, _ in targets], [leaves[n] for n in wanted],
            grad_outputs=[torch.tensor(np.asarray(g, dtype=np.float64), dtype=torch_dtype) for _, g in targets],
            allow_unused=True)
        by_name = dict(zip(wanted, grads))
    for name in spec.differentiable:
        grad = by_name.get(name)
        results[f"grad_{name}"] = None if grad is None else grad.detach().numpy().copy()
    return results


def torch_accepts(layer: str, shapes: Mapping[str, tuple[int, ...] | None], hparams: Mapping[str, Any]) -> str | None:
    """None if torch runs the configuration (on zero inputs), else torch's error message."""
    spec = LAYERS[layer]
    tensors = {}
    for name in spec.tensors:
        shape = shapes.get(name)
        if shape is None:
            tensors[name] = None
        elif name in spec.integer:
            tensors[name] = np.zeros(shape, dtype=np.int64)
        elif name in spec.boolean:
            tensors[name] = np.ones(shape, dtype=bool)
        else:
            tensors[name] = np.full(shape, 0.5)
    try:
        torch_results(layer, tensors, hparams, None)
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as error:  # embedding asserts
        return str(error).splitlines()[0]
    return None
