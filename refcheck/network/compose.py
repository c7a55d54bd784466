"""Composing the user's layers into the model file's network (untrusted side).

Each layer of the model file is the implementation's own layer (contract functions, CS231n
functions or classes, through the usual adapters); refcheck chains them: forward through the list
with each layer's cache kept, then backward in reverse from the loss's upstream gradient 1, each
layer's input gradient handed to the layer before it. Every intermediate output and input
gradient is kept, so the comparison can name the layer where a gradient first goes wrong.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..adapters import LayerFunctions, gradient_tuple, hparams_for_call, unsupported_reason
from ..specs import LAYERS, Unsupported
from .model_file import LayerEntry, NetworkModel

__all__ = ["ComposedStep", "LayerFailure", "compose", "run_composed"]


class LayerFailure(Exception):
    """The user's layer raised or returned something unusable; says which layer and which half."""


class ComposedStep(dict):
    """One forward/backward pass: ``loss``, ``grads`` (by parameter name), ``outputs`` and
    ``grad_inputs`` (one per layer, in layer order)."""


def compose(layers: Mapping[str, LayerFunctions], model: NetworkModel, implementation_name: str) -> list[LayerFunctions]:
    """The implementation's functions for each layer of the model, in order.

    Raises Unsupported when the implementation lacks a layer or cannot take its hyperparameters.
    """
    chain = []
    for entry in model.layers:
        functions = layers.get(entry.layer)
        if functions is None:
            raise Unsupported(f"not implemented: {implementation_name} has no {entry.layer} ({entry.label})")
        if functions.backward is None:
            raise Unsupported(f"{entry.label}: no backward ({functions.missing or 'missing'})")
        reason = unsupported_reason(functions, entry.hparams, entry.shapes)
        if reason:
            raise Unsupported(f"{entry.label}: {reason}")
        chain.append(functions)
    return chain


def _tensors(entry: LayerEntry, activation: Any, params: Mapping[str, np.ndarray], target: np.ndarray) -> list[Any]:
    """forward's positional tensors: the running activation, the layer's parameters, the target."""
    handed = []
    for name in LAYERS[entry.layer].tensors:
        if name == "input":
            handed.append(activation)
        elif name in entry.names:
            handed.append(np.array(params[entry.names[name]], copy=True))
        elif name == "target" and entry.layer in ("binary_cross_entropy", "cross_entropy", "mse_loss"):
            handed.append(np.array(target, copy=True))
        else:
            handed.append(None)
    return handed


def run_composed(chain: list[LayerFunctions], model: NetworkModel, params: Mapping[str, np.ndarray],
                 x: np.ndarray, target: np.ndarray) -> ComposedStep:
    """Forward through ``chain``, backward in reverse; raises LayerFailure naming the layer."""
    outputs, caches = [], []
    activation: Any = np.array(x, copy=True)
    for entry, functions in zip(model.layers, chain):
        try:
            returned = functions.forward(*_tensors(entry, activation, params, target),
                                         **hparams_for_call(functions, entry.hparams))
        except Exception as error:
            raise LayerFailure(f"{entry.label} forward raised {type(error).__name__}: {error}") from error
        if not isinstance(returned, tuple) or len(returned) != 2:
            raise LayerFailure(f"{entry.label} forward must return (out, cache), got {type(returned).__name__}")
        activation, cache = returned
        outputs.append(activation)
        caches.append(cache)
    loss = outputs[-1]
    dtype = np.asarray(x).dtype
    upstream: Any = np.array(1.0, dtype=dtype)
    grad_inputs: list[Any] = [None] * len(chain)
    grads: dict[str, Any] = {}
    for entry, functions, cache in reversed(list(zip(model.layers, chain, caches))):
        try:
            returned = gradient_tuple(functions.backward(upstream, cache))
        except Exception as error:
            raise LayerFailure(f"{entry.label} backward raised {type(error).__name__}: {error}") from error
        differentiable = LAYERS[entry.layer].differentiable
        if len(returned) != len(differentiable):
            raise LayerFailure(f"{entry.label} backward returned {len(returned)} gradient(s), expected "
                               f"{len(differentiable)} ({', '.join(differentiable)})")
        by_tensor = dict(zip(differentiable, returned))
        for tensor, name in entry.names.items():
            grads[name] = by_tensor.get(tensor)
        grad_inputs[entry.index] = by_tensor["input"]
        upstream = by_tensor["input"]
    return ComposedStep(loss=loss, grads=grads, outputs=outputs, grad_inputs=grad_inputs)
