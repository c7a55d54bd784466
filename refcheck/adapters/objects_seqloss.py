"""Object-style recurrent cells, multi-head attention, extra activations and losses (torch.nn names).

Classes named as in torch.nn with ``forward`` and ``backward`` methods, built with torch.nn's
keywords (only those the constructor accepts; the hyperparameters it accepts define what the
layer supports, as in :mod:`refcheck.adapters.objects`):

==========================================  =============================================================
class                                       calling convention
==========================================  =============================================================
GELU, ELU, SELU, Softplus, SiLU, Hardtanh   ``forward(x)``, ``backward(dout) -> dx``
PReLU(num_parameters)                       ``weight`` set; ``backward(dout) -> dx``, weight gradient read
NLLLoss, L1Loss, SmoothL1Loss, HuberLoss,   ``forward(input, target)``, ``backward()`` or
KLDivLoss, MultiMarginLoss                  ``backward(dout)``; class weights as the ``weight`` keyword
RNNCell, GRUCell(input_size, hidden_size)   ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` set;
                                            ``forward(x, h)``, ``backward(dh) -> (dx, dh_prev)``
LSTMCell(input_size, hidden_size)           ``forward(x, (h, c)) -> (h', c')``,
                                            ``backward(dh, dc) -> (dx, dh_prev, dc_prev)``
MultiheadAttention(embed_dim, num_heads)    ``in_proj_weight``, ``in_proj_bias``, ``out_proj_weight``,
                                            ``out_proj_bias`` set; batch-first ``forward(query, key,
                                            value, attn_mask=None)`` (a tuple's first item is the
                                            output), ``backward(dout) -> (dquery, dkey, dvalue)``
==========================================  =============================================================

A parameter ``p``'s gradient is read from the first attribute set among ``grad_p``, ``dp`` and
``p_grad`` (``grad_weight`` and its usual aliases for PReLU). A fresh object per forward call.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any


from ..specs import Unsupported, layer_spec
from .contract import LayerFunctions, user_name
from .optional_tensors import refusing_tensors
from .holders import holder_gradient, set_array
from .objects import WEIGHT_GRAD_ATTRIBUTES

__all__ = ["SEQLOSS_CLASS_NAMES", "adapt_objects_seqloss"]

SEQLOSS_CLASS_NAMES = {
    "GELU": "gelu", "ELU": "elu", "SELU": "selu", "Softplus": "softplus", "SiLU": "silu", "Hardtanh": "hardtanh",
    "PReLU": "prelu", "NLLLoss": "nll_loss", "L1Loss": "l1_loss", "SmoothL1Loss": "smooth_l1_loss",
    "HuberLoss": "huber_loss", "KLDivLoss": "kl_div", "MultiMarginLoss": "multi_margin_loss",
    "RNNCell": "rnn_tanh_cell", "LSTMCell": "lstm_cell", "GRUCell": "gru_cell",
    "MultiheadAttention": "multi_head_attention",
}
_PARAMETERS = {
    "rnn_tanh_cell": ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    "lstm_cell": ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    "gru_cell": ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    "multi_head_attention": ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias"),
}


def _keywords(factory: Callable[..., Any]) -> frozenset[str] | None:
    parameters = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL)


def _gradient(obj: Any, name: str) -> Any:
    held = holder_gradient(getattr(obj, name, None))  # self.weight = Parameter(...); its .grad
    if held is not None:
        return held
    candidates = WEIGHT_GRAD_ATTRIBUTES if name == "weight" else (f"grad_{name}", f"d{name}", f"{name}_grad")
    for attribute in candidates:
        value = getattr(obj, attribute, None)
        if value is not None:
            return value
    raise AttributeError(f"{type(obj).__name__}.backward left no gradient of {name}: none of "
                         f"{', '.join(candidates)} is set")


def _adapt(layer: str, factory: Callable[..., Any]) -> LayerFunctions:
    spec = layer_spec(layer)
    keywords = _keywords(factory)
    accepted = frozenset(h for h in spec.hyper_names if keywords is None or h in keywords)
    origin = f"object: {getattr(factory, '__qualname__', repr(factory))}"

    def construct(**candidates: Any) -> Any:
        return factory(**{k: v for k, v in candidates.items() if keywords is None or k in keywords})

    if spec.family == "loss":
        refuses_weight = keywords is not None and "weight" not in keywords
        constraint = refusing_tensors(None, ("weight",), f"{user_name(origin)} takes no {{}} keyword") \
            if refuses_weight else None
        return LayerFunctions(layer, *_loss(construct, keywords, origin), accepted=accepted, origin=origin,
                              constraint=constraint)
    if layer in _PARAMETERS:
        return LayerFunctions(layer, *_parametric(layer, construct), accepted=accepted, origin=origin)

    def forward(*tensors, **hparams):
        x, weight = tensors[0], (tensors[1] if len(tensors) > 1 else None)
        obj = construct(**hparams, **({} if weight is None else {"num_parameters": int(weight.size)}))
        if weight is not None:
            set_array(obj, "weight", weight)
        return obj.forward(x), obj

    def backward(dout, obj):
        grad_input = obj.backward(dout)
        return (grad_input, _gradient(obj, "weight")) if layer == "prelu" else grad_input

    return LayerFunctions(layer, forward, backward, accepted=accepted, origin=origin)


def _loss(construct: Callable[..., Any], keywords: frozenset[str] | None, origin: str):
    def forward(input, target, weight=None, **hparams):
        if weight is not None and keywords is not None and "weight" not in keywords:
            raise Unsupported(f"{user_name(origin)} takes no weight keyword; this case has class weights")
        obj = construct(**hparams, **({} if weight is None else {"weight": weight}))
        return obj.forward(input, target), obj

    def backward(dout, obj):
        if not inspect.signature(obj.backward).parameters:
            return obj.backward() * dout  # d(loss)/d(input), chained with the upstream gradient
        return obj.backward(dout)

    return forward, backward


def _parametric(layer: str, construct: Callable[..., Any]):
    names = _PARAMETERS[layer]

    def forward(*tensors, **hparams):
        if layer == "multi_head_attention":
            query, key, value, *params, mask = tensors
            obj = construct(embed_dim=int(query.shape[-1]), bias=params[1] is not None, batch_first=True, **hparams)
        else:
            x, *state = tensors[:-4]
            params = tensors[-4:]
            obj = construct(input_size=int(x.shape[1]), hidden_size=int(state[0].shape[1]),
                            bias=params[2] is not None, **hparams)
        present = [name for name, value in zip(names, params) if value is not None]
        for name, parameter in zip(names, params):
            if parameter is not None:
                set_array(obj, name, parameter)
        if layer == "multi_head_attention":
            out = obj.forward(query, key, value, attn_mask=mask)
            out = out[0] if isinstance(out, tuple) else out
        elif layer == "lstm_cell":
            out = tuple(obj.forward(x, (state[0], state[1])))
        else:
            out = obj.forward(x, state[0])
        return out, (obj, present)

    def backward(dout, cache):
        obj, present = cache
        grads = obj.backward(*dout) if layer == "lstm_cell" else obj.backward(dout)
        grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        return (*grads, *(_gradient(obj, name) if name in present else None for name in names))

    return forward, backward


def adapt_objects_seqloss(module: ModuleType) -> dict[str, LayerFunctions]:
    """Contract LayerFunctions for the classes of ``module`` named as in SEQLOSS_CLASS_NAMES."""
    found = {}
    for name, layer in SEQLOSS_CLASS_NAMES.items():
        cls = getattr(module, name, None)
        if inspect.isclass(cls) and callable(getattr(cls, "forward", None)) and callable(getattr(cls, "backward", None)):
            found[layer] = _adapt(layer, cls)
    return found
