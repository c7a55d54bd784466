"""Tensor shapes and id parts of the recurrent, attention, extra activation and weighted loss layers.

:func:`seqloss_shapes` builds a case's tensor shapes from one choice of its space parameters
(raising InvalidConfig where the choice makes no sense); :func:`seqloss_id_parts` gives what the
case id shows beyond its hyperparameters (hidden size, key/value sizes, weights, masks). The
space parameters, by family:

- recurrent: ``batch``, ``input_features``, ``hidden_size``, ``seq_len`` (sequences), ``bias``
  (both biases or none), ``initial_state`` (sequences: ``given``, ``none`` (zeros, no gradient),
  and for the LSTM ``h0`` or ``c0`` alone);
- attention: ``batch_shape`` (scaled_dot_product_attention's leading axes), ``batch`` (multi_head_attention), ``length`` (L), ``source`` (S), ``embed`` (E),
  ``value_embed`` (Ev, scaled_dot_product_attention), ``bias`` (multi_head_attention's two
  projection biases), ``mask`` (``none``, ``bool``, ``additive``, ``bool_2d``: an (L, S) mask
  broadcast over the leading axes; multi_head_attention: ``bool`` and ``additive`` are (L, S),
  ``bool_per_head`` is (N * num_heads, L, S));
- activation: ``input_shape``, ``num_parameters`` (prelu: 1 or ``channels``);
- loss: ``input_shape``, ``class_weight`` (nll_loss, cross_entropy, multi_margin_loss),
  ``element_weight`` (binary_cross_entropy: ``none``, ``full`` or ``broadcast`` over the last axis).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..specs import InvalidConfig, LayerSpec

__all__ = ["SEQLOSS_LAYERS", "SEQLOSS_PARAMS", "seqloss_id_parts", "seqloss_shapes"]

Shape = tuple[int, ...]

SEQLOSS_PARAMS = {
    "recurrent": ("batch", "input_features", "hidden_size", "seq_len", "bias", "initial_state"),
    "attention": ("batch", "batch_shape", "length", "source", "embed", "value_embed", "bias", "mask"),
}
_GATES = {"rnn_tanh_cell": 1, "lstm_cell": 4, "gru_cell": 3, "rnn_tanh": 1, "lstm": 4}
_ACTIVATIONS = ("gelu", "elu", "selu", "softplus", "silu", "hardtanh", "prelu")
_CLASS_LOSSES = ("nll_loss", "cross_entropy")
_LOSSES = _CLASS_LOSSES + ("binary_cross_entropy", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
                           "multi_margin_loss")
SEQLOSS_LAYERS = frozenset(_GATES) | {"scaled_dot_product_attention", "multi_head_attention"} \
    | set(_ACTIVATIONS) | set(_LOSSES)
_INITIAL_STATES = {"rnn_tanh": ("given", "none"), "lstm": ("given", "none", "h0", "c0")}


def _as_shape(value: Any) -> Shape:
    return (value,) if isinstance(value, int) else tuple(value)


def seqloss_shapes(spec: LayerSpec, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> dict[str, Shape | None]:
    """The tensor shapes of one case of a layer in SEQLOSS_LAYERS; raises InvalidConfig."""
    if spec.family == "recurrent":
        return _recurrent(spec.name, p)
    if spec.name == "scaled_dot_product_attention":
        return _sdpa(p)
    if spec.name == "multi_head_attention":
        return _mha(p, hparams)
    shape = _as_shape(p["input_shape"])
    if spec.name == "prelu":
        if p.get("num_parameters", 1) == "channels":
            if len(shape) < 2:
                raise InvalidConfig("prelu with one weight per channel needs an input with a channel axis")
            return {"input": shape, "weight": (shape[1],)}
        return {"input": shape, "weight": (1,)}
    if spec.family == "activation":
        return {"input": shape}
    return _loss(spec.name, shape, p, hparams)


def _recurrent(name: str, p: Mapping[str, Any]) -> dict[str, Shape | None]:
    gates = _GATES[name]
    batch, features = p["batch"], p.get("input_features", 3)
    hidden = p.get("hidden_size", 4)
    shapes: dict[str, Shape | None] = {}
    if name in _INITIAL_STATES:
        state = p.get("initial_state", "given")
        if state not in _INITIAL_STATES[name]:
            raise InvalidConfig(f"{name}: initial_state {state!r} is not one of {_INITIAL_STATES[name]}")
        shapes["input"] = (p.get("seq_len", 3), batch, features)
        shapes["h0"] = (batch, hidden) if state in ("given", "h0") else None
        if name == "lstm":
            shapes["c0"] = (batch, hidden) if state in ("given", "c0") else None
    else:
        shapes["input"] = (batch, features)
        shapes["hx"] = (batch, hidden)
        if name == "lstm_cell":
            shapes["cx"] = (batch, hidden)
    shapes["weight_ih"] = (gates * hidden, features)
    shapes["weight_hh"] = (gates * hidden, hidden)
    shapes["bias_ih"] = shapes["bias_hh"] = (gates * hidden,) if p["bias"] else None
    return shapes


def _sdpa(p: Mapping[str, Any]) -> dict[str, Shape | None]:
    lead = _as_shape(p["batch_shape"])
    length, source = p.get("length", 3), p.get("source", 4)
    embed, value_embed = p.get("embed", 4), p.get("value_embed", 3)
    mask = p.get("mask", "none")
    masks = {"none": None, "bool": lead + (length, source), "additive": lead + (length, source),
             "bool_2d": (length, source)}
    if mask not in masks:
        raise InvalidConfig(f"scaled_dot_product_attention: mask {mask!r} is not one of {tuple(masks)}")
    if p.get("values") == "masked_rows" and mask == "none":
        raise InvalidConfig("fully masked rows need a mask")
    return {"query": lead + (length, embed), "key": lead + (source, embed), "value": lead + (source, value_embed),
            "attn_mask": masks[mask]}


def _mha(p: Mapping[str, Any], hparams: Mapping[str, Any]) -> dict[str, Shape | None]:
    batch, length, source, embed = p["batch"], p.get("length", 3), p.get("source", 4), p.get("embed", 4)
    mask = p.get("mask", "none")
    heads = hparams["num_heads"]
    masks = {"none": None, "bool": (length, source), "additive": (length, source),
             "bool_per_head": (batch * heads, length, source)}
    if mask not in masks:
        raise InvalidConfig(f"multi_head_attention: mask {mask!r} is not one of {tuple(masks)}")
    if p.get("values") == "masked_rows" and mask == "none":
        raise InvalidConfig("fully masked rows need a mask")
    return {"query": (batch, length, embed), "key": (batch, source, embed), "value": (batch, source, embed),
            "in_proj_weight": (3 * embed, embed), "in_proj_bias": (3 * embed,) if p["bias"] else None,
            "out_proj_weight": (embed, embed), "out_proj_bias": (embed,) if p["bias"] else None,
            "attn_mask": masks[mask]}


def _loss(name: str, shape: Shape, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> dict[str, Shape | None]:
    if name in _CLASS_LOSSES:
        target: Shape = () if len(shape) == 1 else (shape[0], *shape[2:])
        classes = shape[0] if len(shape) == 1 else shape[1]
        return {"input": shape, "target": target, "weight": (classes,) if p.get("class_weight") else None}
    if name == "multi_margin_loss":
        if len(shape) > 2:
            raise InvalidConfig("multi_margin_loss input must be (N, C) or (C,)")
        return {"input": shape, "target": shape[:-1], "weight": shape[-1:] if p.get("class_weight") else None}
    if name == "binary_cross_entropy":
        weights = {"none": None, "full": shape, "broadcast": shape[-1:]}
        return {"input": shape, "target": shape, "weight": weights[p.get("element_weight", "none")]}
    if name == "kl_div" and p.get("values") == "zeros" and hparams["log_target"]:
        raise InvalidConfig("targets of exactly 0 are probabilities: log_target must be False")
    if name in ("smooth_l1_loss", "huber_loss") and p.get("values") == "kinks" \
            and (hparams.get("beta", hparams.get("delta")) * 4) % 1:
        raise InvalidConfig("kinks: the threshold must lie on the 0.25 grid of the inputs")
    return {"input": shape, "target": shape}


def seqloss_id_parts(spec: LayerSpec, shapes: Mapping[str, Shape | None], p: Mapping[str, Any]
                     ) -> tuple[dict[str, Any], list[str]]:
    """The shapes the id shows as the input (and weight), and the extra id parts after them."""
    extra: list[str] = []
    if spec.family == "recurrent":
        extra.append(f"h{shapes['weight_hh'][1]}")
        if shapes["bias_ih"] is None:
            extra.append("nobias")
        extra += [f"no{state}" for state in ("h0", "c0") if state in shapes and shapes[state] is None]
        return {"input": shapes["input"]}, extra
    if spec.family == "attention":
        key, value = shapes["key"], shapes["value"]
        extra.append(f"kv{key[-2]}x{value[-1]}" if spec.name == "scaled_dot_product_attention" else f"kv{key[-2]}")
        if spec.name == "multi_head_attention" and shapes["in_proj_bias"] is None:
            extra.append("nobias")
        if shapes["attn_mask"] is not None:
            extra.append(f"mask-{p['mask']}")
        return {"input": shapes["query"]}, extra
    if shapes.get("weight") is not None:
        extra.append(f"w{'x'.join(map(str, shapes['weight']))}")
    return {"input": shapes["input"]}, extra
