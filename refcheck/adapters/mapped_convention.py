"""How functions named by a mapping are called: refcheck's contract, or CS231n's convention.

A mapping says which function is which layer (``[conv2d] function = "my_conv"``); it does not say
how the function wants to be called. A learner's renamed assignment function takes CS231n's
arguments (``my_conv(x, w, b, conv_param) -> (out, cache)``, a loss ``(x, y) -> (loss, dx)``), a
contract-style one the case's tensors and keywords. The signature and, where it could be either,
one probe call in each form decide (see :func:`mapped_convention`); a batchnorm is the spatial
(N, C, H, W) one when its name says so. Otherwise the contract form is kept, as the mapping gave it.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..specs import layer_spec
from .contract import LayerFunctions
from .cs231n import FORMS_BY_LAYER as _CONV_FORMS
from .cs231n_norm import FORMS_BY_LAYER as _NORM_FORMS
from .cs231n_seqloss import FORMS_BY_LAYER as _SEQUENCE_FORMS
from .layouts import Layout, candidate_layouts, with_layout
from .probe import binding_error, has_probe_case, probe

__all__ = ["mapped_convention"]

_CS231N_FORMS = {**_CONV_FORMS, **_NORM_FORMS, **_SEQUENCE_FORMS}


def _cs231n_form(contract: LayerFunctions, forward: Callable[..., Any],
                 backward: Callable[..., Any] | None) -> LayerFunctions | None:
    """The mapped functions called as CS231n's, if the layer has such a form and ``forward``'s
    signature takes its arguments."""
    layer = contract.layer
    if layer not in _CS231N_FORMS:
        return None
    arity, build = _CS231N_FORMS[layer]
    if binding_error(forward, arity):
        return None
    loss = layer_spec(layer).family == "loss"  # a loss's forward gives its own gradient
    form = build(forward, backward if backward is not None or loss else _no_backward, f"cs231n: {contract.origin}")
    if backward is None and not loss:
        form = replace(form, backward=None, missing=contract.missing)
    return replace(form, adapter="mapping, cs231n")


def _no_backward(*args: Any) -> Any:  # never called: the form's backward is removed
    raise NotImplementedError


def _takes_contract_tensors(forward: Callable[..., Any], layer: str) -> bool:
    """Whether ``forward`` can be called with the layer's tensors (all, or the required ones)."""
    spec = layer_spec(layer)
    required = max((i + 1 for i, name in enumerate(spec.tensors) if name not in spec.optional), default=0)
    return not binding_error(forward, len(spec.tensors)) or not binding_error(forward, required)


def _ends_in_param_dict(forward: Callable[..., Any]) -> bool:
    """CS231n's last argument is a dict of hyperparameters: conv_param, bn_param, dropout_param..."""
    try:
        names = [p.name for p in inspect.signature(forward).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return bool(names) and names[-1].lower().endswith(("param", "params"))


def mapped_convention(contract: LayerFunctions, forward: Callable[..., Any], backward: Callable[..., Any] | None,
                      layouts: list[Layout] | None) -> LayerFunctions:
    """The mapped functions in the calling convention they take.

    contract: the functions as the mapping names them, called as refcheck's contract.
    forward, backward: the user's own functions (backward None when the mapping names none).
    layouts: the layouts the mapping gives (None: the layer's defaults).

    The CS231n form is used when ``forward`` takes CS231n's arguments and either not the contract's
    tensors or a last argument named as CS231n's dicts are (``conv_param``); when it takes both
    (``(x, w, b)``, a loss's ``(x, y)``), one probe call in each form decides, for the layers that
    have a probe case: the form that fits (a loss with a backward rather than a forward alone), or
    the one whose forward gave the layer's output (its backward's error is then a finding, noted).
    The contract form is returned unchanged otherwise.
    """
    form = _cs231n_form(contract, forward, backward)
    if form is None:
        return contract
    layer = contract.layer
    if not _takes_contract_tensors(forward, layer) or _ends_in_param_dict(forward):
        return form
    if not has_probe_case(layer):
        return contract
    as_contract = probe(with_layout(contract, (layouts or candidate_layouts(layer))[0]))
    as_cs231n = probe(with_layout(form, candidate_layouts(layer)[0]))
    if as_contract.fits and (contract.backward is not None or not as_cs231n.fits or form.backward is None):
        return contract
    if as_cs231n.fits:
        return replace(form, fixed={**form.fixed, **as_cs231n.fixed})
    if as_cs231n.forward_fits and not as_contract.forward_fits:
        return replace(form, notes=(f"probe call: {as_cs231n.reason}",))
    return contract
