"""The implementation contract: one layer's forward/backward pair and how it is called.

``LayerFunctions`` is what every way of providing a layer ends in (contract-style functions found
by name, the CS231n and object adapters); the execution stage calls them through the helpers here.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..specs import LAYERS, LayerSpec, layer_spec
from .cs231n_names import cs231n_owns

__all__ = ["ForeignResult", "LayerFunctions", "accepted_keywords", "takes_param_dict", "call_forward_backward",
           "contract_layers", "gradient_tuple",
           "hparams_for_call", "named_outputs", "unsupported_reason", "upstream_for_backward"]


@dataclass(frozen=True)
class LayerFunctions:
    """The forward/backward pair of one layer, in the contract's calling convention.

    accepted: the hyperparameter keywords forward accepts (None: any, e.g. ``**kwargs``).
        A hyperparameter outside this set is supported only at its torch default.
    constraint: optional extra limit, ``constraint(hparams) -> reason | None``; a reason
        means the case is skipped as unsupported (e.g. an adapter that only has square strides).
    origin: where the functions come from, for reports ("mymod.conv2d_forward").
    missing: the name of the function the module lacks when it has only one of the pair
        (``backward`` is then None: the output is still checked, the gradients are errors).
    """

    layer: str
    forward: Callable[..., Any]
    backward: Callable[..., Any] | None
    accepted: frozenset[str] | None
    constraint: Callable[[Mapping[str, Any]], str | None] | None = None
    origin: str = ""
    missing: str = ""


@dataclass(frozen=True)
class ForeignResult:
    """Stands for a result that is not a numeric numpy array (a list, another library's tensor...).

    Only its type name crosses from the implementation's process to the trusted side.
    """

    type_name: str


def accepted_keywords(function: Callable[..., Any]) -> frozenset[str] | None:
    """Keyword parameters of a function; None if it takes ``**kwargs`` (accepts anything)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters
                     if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))


def takes_param_dict(function: Callable[..., Any]) -> bool:
    """A CS231n-style signature (``dropout_forward(x, dropout_param)``): a ``*_param`` argument, which
    no contract forward has. Such a function is left to the CS231n adapter even under a contract name."""
    try:
        return any(name.endswith("_param") for name in inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False


def contract_layers(module: ModuleType) -> dict[str, LayerFunctions]:
    """Layers a module implements with the contract's ``<layer>_forward`` / ``<layer>_backward``."""
    found = {}
    for name in LAYERS:
        forward = getattr(module, f"{name}_forward", None)
        backward = getattr(module, f"{name}_backward", None)
        if callable(forward) and callable(backward) and not takes_param_dict(forward) \
                and not cs231n_owns(module, name):
            found[name] = LayerFunctions(name, forward, backward, accepted_keywords(forward),
                                         origin=f"{module.__name__}.{name}_forward")
        elif callable(forward) and not callable(backward) and not takes_param_dict(forward):
            found[name] = LayerFunctions(name, forward, None, accepted_keywords(forward),
                                         origin=f"{module.__name__}.{name}_forward", missing=f"{name}_backward")
    return found


def unsupported_reason(functions: LayerFunctions, hparams: Mapping[str, Any]) -> str | None:
    """Why a case needs something the implementation cannot take (None if it can run it).

    A hyperparameter forward does not accept is supported only at torch's default.
    """
    spec = layer_spec(functions.layer)
    if functions.accepted is not None:
        for hyper in spec.hypers:
            if hyper.name in functions.accepted or hyper.name not in hparams:
                continue
            default = hyper.default_for(hparams)
            if hparams[hyper.name] != default:
                return (f"unsupported: {functions.layer}_forward does not accept {hyper.name}; "
                        f"case needs {hyper.name}={hparams[hyper.name]!r} (default {default!r})")
    if functions.constraint is not None:
        reason = functions.constraint(hparams)
        if reason:
            return reason if reason.startswith("unsupported") else f"unsupported: {reason}"
    return None


def gradient_tuple(grads: Any) -> tuple[Any, ...]:
    """backward's return value as a tuple (one-input layers may return a single array)."""
    return tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)


def upstream_for_backward(spec: LayerSpec, gradients: Mapping[str, Any]) -> Any:
    """What backward receives: the one upstream gradient, or a tuple of them in output order.

    ``gradients`` maps differentiable output names to arrays (absent outputs give None); each is
    copied, so the caller's arrays stay pristine.
    """
    copies = [None if gradients.get(name) is None else np.array(gradients[name], copy=True)
              for name in spec.differentiable_outputs]
    return copies[0] if len(copies) == 1 else tuple(copies)


def named_outputs(spec: LayerSpec, returned: Any) -> dict[str, Any]:
    """forward's first return value by output name; ValueError when a multi-output layer's is not
    a tuple of the right length."""
    if not spec.multi_output:
        return {spec.outputs[0]: returned}
    if not isinstance(returned, (tuple, list)) or len(returned) != len(spec.outputs):
        got = f"a tuple of {len(returned)}" if isinstance(returned, (tuple, list)) else type(returned).__name__
        raise ValueError(f"forward must return (({', '.join(spec.outputs)}), cache); its first item is {got}")
    return dict(zip(spec.outputs, returned))


def call_forward_backward(spec: LayerSpec, functions: LayerFunctions, tensors: Mapping[str, Any],
                          hparams: Mapping[str, Any], gradients: Mapping[str, Any]) -> dict[str, Any]:
    """Run forward then backward on fresh copies: ``{"output": ..., "grad_<tensor>": ...}``.

    ``gradients``: the upstream gradient of each differentiable output, by output name.
    Whatever the implementation raises propagates to the caller.
    """
    handed = [None if tensors[name] is None else np.array(tensors[name], copy=True) for name in spec.tensors]
    returned, cache = functions.forward(*handed, **hparams)
    outputs = named_outputs(spec, returned)
    grads = gradient_tuple(functions.backward(upstream_for_backward(spec, gradients), cache))
    return {**outputs, **{f"grad_{name}": grad for name, grad in zip(spec.differentiable, grads)}}


def hparams_for_call(functions: LayerFunctions, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords to pass: every hyperparameter forward accepts."""
    if functions.accepted is None:
        return dict(hparams)
    return {name: value for name, value in hparams.items() if name in functions.accepted}
