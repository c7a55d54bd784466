"""Functions named by a mapping whose keyword arguments are their own: spelled another way
(``pad`` for padding, ``size`` for kernel_size, or as the mapping's ``args`` says) or taking one
int where torch takes an (h, w) pair (``stride=1``).

Such a function is called as a class constructor is (:class:`Constructor`): each of its keyword
parameters is matched to a hyperparameter by name, alias or the mapping, and the pair-valued ones
are probed as one int and as a pair (an int default first). Cases a chosen form cannot express (a
non-square stride for an int) are left out, named. A function whose bias argument has no default
(it always adds one) gets zeros on a case without bias, and its bias gradient is dropped there.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..specs import layer_spec
from .construct import Constructor, form_choices
from .contract import LayerFunctions, gradient_tuple, positional_parameters
from .layouts import WEIGHT_AXES, Layout
from .optional_tensors import BiasCache, zeros_for_missing_bias

__all__ = ["keyword_functions"]


def keyword_functions(layer: str, forward: Callable[..., Any], backward: Callable[..., Any] | None,
                      renames: Mapping[str, str], offsets: Mapping[str, int], origin: str,
                      missing: str) -> tuple[Callable[[Layout, Mapping[str, str]], LayerFunctions], list[dict[str, str]]] | None:
    """(build for a layout and a choice of forms, the forms worth probing), or None when the
    function's keywords are the contract's own and it takes a missing bias as None (it is then
    called as the contract says)."""
    constructor = Constructor.of(forward, renames=renames, offsets=offsets)
    hyper_names = set(layer_spec(layer).hyper_names)
    targets = {parameter: target for parameter, target in constructor.targets.items() if target in hyper_names}
    always_bias = _always_adds_bias(layer, forward)
    own = any(parameter != target for parameter, target in targets.items()) or constructor.pair_targets() or offsets
    if not own and not always_bias:
        return None
    constructor = Constructor(forward, targets, {}, dict(offsets), False)
    forms = form_choices(constructor)

    def build(layout: Layout, chosen: Mapping[str, str]) -> LayerFunctions:
        called = constructor.with_forms(chosen)
        # The weight's output axis (torch's axis 0) in the user's layout: a zero bias's length.
        outputs = WEIGHT_AXES[layout.weight].index(0) if layout.weight in WEIGHT_AXES else 0

        def keyword_forward(*tensors: Any, **hparams: Any) -> Any:
            tensors = list(tensors)
            has_bias = not (always_bias and len(tensors) > 2 and tensors[2] is None)
            if not has_bias:
                weight = np.asarray(tensors[1])
                tensors[2] = zeros_for_missing_bias(None, weight, weight.shape[outputs])
            out, cache = forward(*tensors, **called.arguments(hparams))
            return out, BiasCache(cache, has_bias)

        def keyword_backward(dout: Any, cache: Any) -> Any:
            if not isinstance(cache, BiasCache):  # not from keyword_forward: as the user's code gets it
                return backward(dout, cache)
            grads = backward(dout, cache.inner)
            return grads if cache.has_bias else (*gradient_tuple(grads)[:2], None)

        constraint = called.unsupported if any(f in ("int", "numeric pair") for f in chosen.values()) else None
        return LayerFunctions(layer, keyword_forward, None if backward is None else keyword_backward,
                              frozenset(called.hyperparameters()), origin=origin, missing=missing, adapter="mapping",
                              constraint=constraint)

    return build, [f for f in forms if "chw" not in f.values()]


def _always_adds_bias(layer: str, forward: Callable[..., Any]) -> bool:
    """The layer has an optional bias and the function's bias argument (third) has no default."""
    spec = layer_spec(layer)
    if "bias" not in spec.optional or spec.tensors.index("bias") != 2:
        return False
    parameters = positional_parameters(forward) or []
    return len(parameters) > 2 and parameters[2].default is inspect.Parameter.empty
