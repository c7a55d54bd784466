"""Adapters: layers written in other common styles, plugged into refcheck's implementation contract.

Takes the user's module, gives :class:`LayerFunctions` (the contract's calling convention, in
:mod:`refcheck.adapters.contract`). ``adapt(module)`` returns, for each layer the module implements in a non-contract style, a
:class:`LayerFunctions` whose forward/backward follow the contract's
calling convention. Two styles are recognised:

- CS231n functions (``conv_forward_naive(x, w, b, conv_param)`` ...): see ``refcheck.adapters.cs231n``;
- objects with ``forward(x)`` / ``backward(dout)`` methods: see ``refcheck.adapters.objects``.

Adapters map layouts and names only; the user's results pass through unchanged, so every mismatch
is still reported.
"""
from __future__ import annotations

from types import ModuleType

from .contract import (ForeignResult, LayerFunctions, Misfit, accepted_keywords, call_forward_backward,
                       contract_layers, gradient_tuple, hparams_for_call, named_outputs, takes_param_dict,
                       unsupported_labels, unsupported_reason, upstream_for_backward, user_name)
from .cs231n import adapt_cs231n
from .cs231n_names import cs231n_owns
from .cs231n_seqloss import adapt_cs231n_seqloss
from .cs231n_norm import adapt_cs231n_norm
from .objects import adapt_objects
from .objects_convnorm import adapt_objects_convnorm
from .objects_seqloss import adapt_objects_seqloss

__all__ = ["ForeignResult", "LayerFunctions", "Misfit", "accepted_keywords", "adapt", "adapt_cs231n", "adapt_objects",
           "call_forward_backward", "contract_layers", "gradient_tuple", "hparams_for_call", "named_outputs",
           "takes_param_dict", "unsupported_labels", "unsupported_reason", "upstream_for_backward", "user_name"]


def _has_contract_functions(module: ModuleType, layer: str) -> bool:  # both halves: see discover for the rest
    return all(callable(getattr(module, f"{layer}_{way}", None)) for way in ("forward", "backward")) and \
        not takes_param_dict(module.__dict__.get(f"{layer}_forward", getattr(module, f"{layer}_forward"))) and \
        not cs231n_owns(module, layer)


def adapt(module: ModuleType) -> dict[str, LayerFunctions]:
    """Adapted LayerFunctions for every layer ``module`` implements in a recognised other style.

    Precedence for one layer: contract-style ``<layer>_forward`` / ``<layer>_backward`` in the
    module (the layer is then left out here, the functions are used as they are), then object-style
    classes, then CS231n functions.

    Parameters
    ----------
    module : module
        The user's implementation module.

    Returns
    -------
    dict of str to LayerFunctions
        Contract layer name -> functions in the contract's calling convention; layers the module
        already provides in contract style are not included.
    """
    adapted = {**adapt_cs231n(module), **adapt_cs231n_norm(module),
               **adapt_cs231n_seqloss(module, adapt_cs231n(module).get("linear")),
               **adapt_objects(module), **adapt_objects_seqloss(module), **adapt_objects_convnorm(module)}
    return {layer: functions for layer, functions in adapted.items()
            if not _has_contract_functions(module, layer)}
