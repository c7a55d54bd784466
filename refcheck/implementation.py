"""Loading an implementation: a module (importable name or .py path) mapped to per-layer functions."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .errors import UsageError
from .specs import LAYERS, LayerSpec, layer_spec

__all__ = ["BUILTIN", "Implementation", "LayerFunctions", "accepted_keywords", "call_forward_backward",
           "contract_layers", "gradient_tuple", "hparams_for_call", "load_implementation", "unsupported_reason"]


@dataclass(frozen=True)
class LayerFunctions:
    """The forward/backward pair of one layer, in the contract's calling convention.

    accepted: the hyperparameter keywords forward accepts (None: any, e.g. ``**kwargs``).
        A hyperparameter outside this set is supported only at its torch default.
    constraint: optional extra limit, ``constraint(hparams) -> reason | None``; a reason
        means the case is skipped as unsupported (e.g. an adapter that only has square strides).
    origin: where the functions come from, for reports ("mymod.conv2d_forward").
    """

    layer: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    accepted: frozenset[str] | None
    constraint: Callable[[Mapping[str, Any]], str | None] | None = None
    origin: str = ""


BUILTIN = "refcheck.layers"


@dataclass(frozen=True)
class Implementation:
    """A loaded implementation: its name and the layers it provides."""

    name: str
    layers: dict[str, LayerFunctions]


def _import(reference: str) -> ModuleType:
    """Import a module by dotted name or from a path to a .py file (or a package folder)."""
    path = Path(reference)
    if reference.endswith(".py") or path.is_dir() or os.sep in reference:
        if path.is_dir():
            path = path / "__init__.py"
        if not path.is_file():
            raise UsageError(f"--impl {reference!r}: no such file; give a path to a .py file or an importable module name")
        module_name = f"refcheck_impl_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"--impl {reference!r}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        # The user's folder goes on the path so the module can import its neighbours.
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise UsageError(f"--impl {reference!r}: importing it raised {type(error).__name__}: {error}") from error
        return module
    try:
        return importlib.import_module(reference)
    except ModuleNotFoundError as error:
        if error.name and reference.startswith(error.name):
            raise UsageError(f"--impl {reference!r}: no module named {error.name!r}; give an importable "
                             "module name or a path to a .py file") from None
        raise UsageError(f"--impl {reference!r}: importing it raised ModuleNotFoundError: {error}") from error
    except Exception as error:
        raise UsageError(f"--impl {reference!r}: importing it raised {type(error).__name__}: {error}") from error


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


def contract_layers(module: ModuleType) -> dict[str, LayerFunctions]:
    """Layers a module implements with the contract's ``<layer>_forward`` / ``<layer>_backward``."""
    found = {}
    for name in LAYERS:
        forward = getattr(module, f"{name}_forward", None)
        backward = getattr(module, f"{name}_backward", None)
        if callable(forward) and callable(backward):
            found[name] = LayerFunctions(name, forward, backward, accepted_keywords(forward),
                                         origin=f"{module.__name__}.{name}_forward")
    return found


def load_implementation(reference: str | None = None) -> Implementation:
    """Load an implementation by module name or .py path (default: the built-in layers).

    Contract-style functions win; adapters (CS231n style, object style) fill in other layers.
    """
    reference = reference or BUILTIN
    if reference.endswith(".py") or os.sep in reference:
        # Absolute, so worker processes load the same file whatever their directory.
        reference = str(Path(reference).resolve())
    module = _import(reference)
    layers = {}
    if reference != BUILTIN:
        from .adapters import adapt  # imported here: the adapters import this module

        layers.update(adapt(module))
    layers.update(contract_layers(module))
    return Implementation(reference, layers)


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


def call_forward_backward(spec: LayerSpec, functions: LayerFunctions, tensors: Mapping[str, Any],
                          hparams: Mapping[str, Any], dout: Any) -> dict[str, Any]:
    """Run forward then backward on fresh copies: ``{"output": ..., "grad_<tensor>": ...}``.

    Whatever the implementation raises propagates to the caller.
    """
    handed = [None if tensors[name] is None else np.array(tensors[name], copy=True) for name in spec.tensors]
    output, cache = functions.forward(*handed, **hparams)
    grads = gradient_tuple(functions.backward(np.array(dout, copy=True), cache))
    return {"output": output, **{f"grad_{name}": grad for name, grad in zip(spec.differentiable, grads)}}


def hparams_for_call(functions: LayerFunctions, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords to pass: every hyperparameter forward accepts."""
    if functions.accepted is None:
        return dict(hparams)
    return {name: value for name, value in hparams.items() if name in functions.accepted}
