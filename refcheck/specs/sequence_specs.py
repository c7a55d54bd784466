"""Specs of the recurrent layers (cells and whole sequences) and of attention.

Layouts are torch's: cell weights ``(G * hidden_size, input_size)`` with the gate blocks stacked
(LSTM i, f, g, o; GRU r, z, n), sequences sequence-first ``(T, N, input_size)``. The recurrent
state is explicit: a cell takes ``hx`` (and ``cx``), a sequence takes optional ``h0`` (and
``c0``; None means zeros, and then no gradient) and returns its final states as extra outputs.

``multi_head_attention`` is batch-first ``(N, L, E)``, as ``torch.nn.MultiheadAttention(
batch_first=True)``; ``torch.nn.functional.multi_head_attention_forward`` is sequence-first, so
the oracle's wrapper transposes around it. Its boolean ``attn_mask`` is torch.nn's: True masks a
key out; ``scaled_dot_product_attention``'s boolean mask is the opposite (True takes part).
Masks are inputs that get no gradient; a mask is boolean or additive (float) from case to case.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .layer_specs import Hyper, InvalidConfig, LayerSpec

__all__ = ["SEQUENCE_SPECS"]

Shape = tuple[int, ...]
_GATES = {"rnn_tanh_cell": 1, "lstm_cell": 4, "gru_cell": 3, "rnn_tanh": 1, "lstm": 4}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfig(message)


def _recurrent_sizes(name: str, shapes: Mapping[str, Shape | None], sequence: bool) -> tuple[int, int]:
    """(batch, hidden_size) after checking every tensor against torch's layout."""
    gates = _GATES[name]
    x = tuple(shapes["input"])
    _check(len(x) == (3 if sequence else 2), f"{name}: input {x} should be {'(T, N, D)' if sequence else '(N, D)'}")
    _check(min(x) >= 1, f"{name}: empty input {x}")
    weight_hh = tuple(shapes["weight_hh"])
    hidden = weight_hh[1]
    _check(weight_hh == (gates * hidden, hidden), f"{name}: weight_hh {weight_hh} is not ({gates}*H, H)")
    _check(tuple(shapes["weight_ih"]) == (gates * hidden, x[-1]),
           f"{name}: weight_ih {shapes['weight_ih']} is not ({gates * hidden}, {x[-1]})")
    has_bias = [shapes.get(b) is not None for b in ("bias_ih", "bias_hh")]
    _check(has_bias[0] == has_bias[1], f"{name}: bias_ih and bias_hh are both given or both None")
    for bias in ("bias_ih", "bias_hh"):
        if shapes.get(bias) is not None:
            _check(tuple(shapes[bias]) == (gates * hidden,), f"{name}: {bias} is not ({gates * hidden},)")
    batch = x[-2]
    for state in ("hx", "cx", "h0", "c0"):
        if shapes.get(state) is not None:
            _check(tuple(shapes[state]) == (batch, hidden), f"{name}: {state} is not ({batch}, {hidden})")
    return batch, hidden


def _cell_shape(name: str):
    def rule(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> Any:
        batch, hidden = _recurrent_sizes(name, shapes, sequence=False)
        if name == "lstm_cell":
            return {"h_1": (batch, hidden), "c_1": (batch, hidden)}
        return (batch, hidden)
    return rule


def _sequence_shape(name: str):
    def rule(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> Any:
        batch, hidden = _recurrent_sizes(name, shapes, sequence=True)
        out = {"output": (shapes["input"][0], batch, hidden), "h_n": (batch, hidden)}
        if name == "lstm":
            out["c_n"] = (batch, hidden)
        return out
    return rule


def _mask_check(shapes: Mapping[str, Shape | None], allowed: tuple[Shape, ...], where: str) -> None:
    mask = shapes.get("attn_mask")
    if mask is not None:
        _check(tuple(mask) in allowed, f"{where}: attn_mask {tuple(mask)} is not one of {allowed}")


def _sdpa_shape(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> Shape:
    query, key, value = (tuple(shapes[n]) for n in ("query", "key", "value"))
    _check(len(query) >= 2 and len(key) == len(query) == len(value), "query, key and value need the same rank >= 2")
    _check(query[:-2] == key[:-2] == value[:-2], "query, key and value need the same leading axes")
    _check(query[-1] == key[-1] and key[-2] == value[-2], "key must be (..., S, E) and value (..., S, Ev)")
    _check(hp["dropout_p"] == 0.0, "only dropout_p=0 is comparable (dropout would need an explicit mask)")
    _check(not (hp["is_causal"] and shapes.get("attn_mask") is not None),
           "Explicit attn_mask should not be set when is_causal=True")
    length, source = query[-2], key[-2]
    lead = query[:-2]
    _mask_check(shapes, tuple(lead[i:] + (length, source) for i in range(len(lead) + 1)),
                "scaled_dot_product_attention")
    return (*query[:-1], value[-1])


def _mha_shape(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> Shape:
    query, key, value = (tuple(shapes[n]) for n in ("query", "key", "value"))
    _check(len(query) == 3 and len(key) == 3 and key == value, "query (N, L, E), key and value (N, S, E)")
    batch, length, embed = query
    _check(key[0] == batch and key[2] == embed, f"key {key} is not ({batch}, S, {embed})")
    heads = hp["num_heads"]
    _check(heads >= 1 and embed % heads == 0, f"embed_dim {embed} must be divisible by num_heads {heads}")
    _check(tuple(shapes["in_proj_weight"]) == (3 * embed, embed), "in_proj_weight is not (3E, E)")
    _check(tuple(shapes["out_proj_weight"]) == (embed, embed), "out_proj_weight is not (E, E)")
    for bias, size in (("in_proj_bias", 3 * embed), ("out_proj_bias", embed)):
        if shapes.get(bias) is not None:
            _check(tuple(shapes[bias]) == (size,), f"{bias} is not ({size},)")
    source = key[1]
    _mask_check(shapes, ((length, source), (batch * heads, length, source)), "multi_head_attention")
    return query


_RECURRENT_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_BIASES = frozenset({"bias_ih", "bias_hh"})
_WRAPPERS = "refcheck.oracle.wrappers_sequence"
_MHA_TENSORS = ("query", "key", "value", "in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")

SEQUENCE_SPECS = (
    LayerSpec("rnn_tanh_cell", "recurrent", ("input", "hx") + _RECURRENT_WEIGHTS, ("input", "hx") + _RECURRENT_WEIGHTS,
              (), _cell_shape("rnn_tanh_cell"), optional=_BIASES, torch_function="torch.rnn_tanh_cell"),
    LayerSpec("lstm_cell", "recurrent", ("input", "hx", "cx") + _RECURRENT_WEIGHTS,
              ("input", "hx", "cx") + _RECURRENT_WEIGHTS, (), _cell_shape("lstm_cell"), optional=_BIASES,
              outputs=("h_1", "c_1"), torch_function=f"{_WRAPPERS}.lstm_cell"),
    LayerSpec("gru_cell", "recurrent", ("input", "hx") + _RECURRENT_WEIGHTS, ("input", "hx") + _RECURRENT_WEIGHTS,
              (), _cell_shape("gru_cell"), optional=_BIASES, torch_function=f"{_WRAPPERS}.gru_cell"),
    LayerSpec("rnn_tanh", "recurrent", ("input", "h0") + _RECURRENT_WEIGHTS, ("input", "h0") + _RECURRENT_WEIGHTS,
              (), _sequence_shape("rnn_tanh"), optional=_BIASES | {"h0"}, outputs=("output", "h_n"),
              torch_function=f"{_WRAPPERS}.rnn_tanh"),
    LayerSpec("lstm", "recurrent", ("input", "h0", "c0") + _RECURRENT_WEIGHTS,
              ("input", "h0", "c0") + _RECURRENT_WEIGHTS, (), _sequence_shape("lstm"),
              optional=_BIASES | {"h0", "c0"}, outputs=("output", "h_n", "c_n"), torch_function=f"{_WRAPPERS}.lstm"),
    LayerSpec("scaled_dot_product_attention", "attention", ("query", "key", "value", "attn_mask"),
              ("query", "key", "value"),
              (Hyper("dropout_p", 0.0, in_id_at_default=False), Hyper("is_causal", False), Hyper("scale", None)), _sdpa_shape,
              optional=frozenset({"attn_mask"}), torch_function=f"{_WRAPPERS}.scaled_dot_product_attention"),
    LayerSpec("multi_head_attention", "attention", _MHA_TENSORS + ("attn_mask",), _MHA_TENSORS,
              (Hyper("num_heads", None),), _mha_shape, optional=frozenset({"in_proj_bias", "out_proj_bias", "attn_mask"}),
              torch_function=f"{_WRAPPERS}.multi_head_attention"),
)
