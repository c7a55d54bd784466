"""Optional tensors that an implementation's forward does not take.

A layer may gain an optional tensor after its others (cross_entropy's and binary_cross_entropy's
``weight``). A forward written without it, ``cross_entropy_forward(input, target, *, reduction)``,
still runs every case where that tensor is None; a case that has one is outside what it supports,
the way a hyperparameter forward does not accept is supported only at its default: planning leaves
such cases out (named in the "not supported" line), so that the cases that do run hold the sweep's
coverage (a case run into a skip held values no other case checked).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..specs import Unsupported, layer_spec
from .contract import LayerFunctions, user_name

__all__ = ["BiasCache", "fit_optional_tensors", "positional_capacity", "refusing_tensors", "zeros_for_missing_bias"]


def positional_capacity(function: Any) -> int | None:
    """How many positional arguments ``function`` takes; None when unlimited (``*args``) or unknown."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return None
    return sum(1 for p in parameters if p.kind in kinds)


def fit_optional_tensors(functions: LayerFunctions) -> LayerFunctions:
    """``functions`` unchanged, or with a forward that leaves out the trailing optional tensors it lacks.

    Only trailing tensors the spec marks optional are left out; a case that gives one of them
    raises :class:`Unsupported` (reported as skipped, never failed).
    """
    spec = layer_spec(functions.layer)
    capacity = positional_capacity(functions.forward)
    if capacity is None or capacity >= len(spec.tensors):
        return functions
    missing = spec.tensors[capacity:]
    if not all(name in spec.optional for name in missing):
        return functions  # a required tensor is missing: calling it shows the real error
    inner = functions.forward

    def forward(*tensors: Any, **hparams: Any) -> Any:
        for name, value in zip(missing, tensors[capacity:]):
            if value is not None:
                raise Unsupported(f"{user_name(functions.origin, functions.layer + '_forward')} takes no {name} tensor; this case has one")
        return inner(*tensors[:capacity], **hparams)

    who = user_name(functions.origin, functions.layer + "_forward")
    return replace(functions, forward=forward,
                   constraint=refusing_tensors(functions.constraint, missing, f"{who} takes no {{}} tensor"))


def refusing_tensors(constraint: Callable[[Mapping[str, Any]], str | None] | None, names: Iterable[str],
                     reason: str) -> Callable[[Mapping[str, Any]], str | None]:
    """``constraint`` (or none) that also refuses a case giving any of the tensors ``names``
    (``reason`` formatted with the tensor's name), read from the ``<name>_shape`` entries that
    :func:`~refcheck.adapters.contract.unsupported_labels` adds."""
    names = tuple(names)

    def refusing(hparams: Mapping[str, Any]) -> str | None:
        for name in names:
            if hparams.get(f"{name}_shape") is not None:
                return reason.format(name)
        return constraint(hparams) if constraint is not None else None

    return refusing


@dataclass(frozen=True)
class BiasCache:
    """The user's cache, and whether the case had a bias: code that always adds one was given
    zeros in its place (:func:`zeros_for_missing_bias`), and its bias gradient is then dropped."""

    inner: Any
    has_bias: bool


def zeros_for_missing_bias(bias: np.ndarray | None, weight: np.ndarray, count: int | None = None) -> np.ndarray:
    """``bias``, or for code that always adds one, ``count`` zeros (default: the weight's first
    axis) of the weight's dtype."""
    return bias if bias is not None else np.zeros(weight.shape[0] if count is None else count, dtype=weight.dtype)
