"""Recurrent and attention mistakes: gates in another order (LSTM i, f, o, g as in CS231n; GRU z, r,
n), the recurrent gradient dropped in backpropagation through time, GRU's reset gate applied
before the hidden matmul, attention scores scaled by d instead of sqrt(d), the softmax taken over
the query axis, and a boolean mask read with the opposite convention.

Each candidate is torch's autograd on the case's inputs with the mistake built in (a permutation
of the gate blocks, or a mistaken variant of the oracle's wrapper), so it holds every output and
gradient the mistake would give.
"""
from __future__ import annotations

import itertools

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic

__all__ = ["SEQUENCE_CHECKS"]

_GATES = {"lstm_cell": "ifgo", "lstm": "ifgo", "gru_cell": "rzn"}
_FIRST_TRIED = {"ifgo": "ifog", "rzn": "zrn"}  # CS231n's LSTM order; GRU's z and r swapped
_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _variant(context: Context, variant: str, tensor: str) -> np.ndarray | None:
    """The tensor as torch computes it with the mistake ``variant`` built into the oracle's wrapper."""
    return context.torch(f"variant:{variant}", hparams={"variant": variant}).get(tensor)


def _orders(layer: str) -> list[str]:
    torch_order = _GATES[layer]
    others = ["".join(p) for p in itertools.permutations(torch_order) if "".join(p) != torch_order]
    first = _FIRST_TRIED[torch_order]
    return [first] + [order for order in others if order != first]


def _blocks(array: np.ndarray, source: str, target: str) -> np.ndarray:
    """Rearrange the gate blocks (first axis) of ``array`` from the ``source`` order to ``target``."""
    blocks = np.split(array, len(source), axis=0)
    return np.concatenate([blocks[source.index(gate)] for gate in target], axis=0)


def gate_order(context: Context, tensor: str) -> str | None:
    """The gate blocks of the stacked weights read in another order than torch's."""
    torch_order = _GATES[context.layer]
    for order in _orders(context.layer):
        # The user reads block k as gate order[k]: torch computes the same with the blocks moved to
        # torch's places; the weight gradients then move back to the user's places.
        moved = {name: _blocks(context.wide(name), order, torch_order) for name in _WEIGHTS
                 if context.tensors.get(name) is not None}
        candidate = context.torch(f"gates:{order}", tensors=moved).get(tensor)
        if candidate is not None and tensor[len("grad_"):] in _WEIGHTS:
            candidate = _blocks(candidate, torch_order, order)
        if context.explains(tensor, candidate):
            expected = ", ".join(torch_order)
            return (f"gate order: your gates are stacked as {', '.join(order)}; torch stacks them as {expected} "
                    f"(blocks of hidden_size rows of weight_ih, weight_hh and the biases)")
    return None


def recurrent_gradient_dropped(context: Context, tensor: str) -> str | None:
    """Backpropagation through time without the gradient that h_{t-1} receives from step t."""
    if context.explains(tensor, _variant(context, "no_recurrent_grad", tensor)):
        return ("recurrent gradient missing: h_{t-1} also feeds step t, so its gradient is dout[t-1] plus "
                "d_pre[t] @ weight_hh; carry it backwards through the steps")
    return None


def reset_before_matmul(context: Context, tensor: str) -> str | None:
    """GRU's n gate computed from W_hn (r * h) instead of r * (W_hn h + b_hn)."""
    if context.explains(tensor, _variant(context, "reset_before_matmul", tensor)):
        return ("GRU reset gate applied before the hidden matmul: torch computes n = tanh(W_in x + b_in + "
                "r * (W_hn h + b_hn)), not tanh(W_in x + b_in + W_hn (r * h) + b_hn)")
    return None


def scaled_by_d(context: Context, tensor: str) -> str | None:
    """Scores divided by the head size d instead of sqrt(d) (only where the scale is torch's default)."""
    if context.hparams.get("scale") is not None:
        return None
    if context.explains(tensor, _variant(context, "scale_by_d", tensor)):
        return "attention scores scaled by 1/d: torch scales q @ k^T by 1/sqrt(d), d the query (head) size"
    return None


def softmax_over_queries(context: Context, tensor: str) -> str | None:
    """The softmax normalises each key's column over the queries instead of each query's row."""
    if context.explains(tensor, _variant(context, "softmax_over_queries", tensor)):
        return "softmax over the wrong axis: normalise each query's scores over the keys (the last axis)"
    return None


def mask_inverted(context: Context, tensor: str) -> str | None:
    """A boolean mask read with the other convention (True = keep vs True = masked out)."""
    mask = context.tensors.get("attn_mask")
    if mask is None or np.asarray(mask).dtype != np.bool_:
        return None
    candidate = context.torch("mask_inverted", tensors={"attn_mask": ~np.asarray(mask)}).get(tensor)
    if context.explains(tensor, candidate):
        if context.layer == "scaled_dot_product_attention":
            return "boolean attn_mask inverted: in scaled_dot_product_attention True means the key takes part"
        return "boolean attn_mask inverted: in torch.nn.MultiheadAttention True means the key is masked out"
    return None


_ALL = ("output", "h_1", "c_1", "h_n", "c_n", "grad_input", "grad_hx", "grad_cx", "grad_h0", "grad_c0",
        "grad_weight_ih", "grad_weight_hh", "grad_bias_ih", "grad_bias_hh", "grad_query", "grad_key", "grad_value",
        "grad_in_proj_weight", "grad_in_proj_bias", "grad_out_proj_weight", "grad_out_proj_bias")
_GRADIENTS = tuple(name for name in _ALL if name.startswith("grad_"))

SEQUENCE_CHECKS: dict[str, list[tuple[tuple[str, ...], Check]]] = {
    "rnn_tanh_cell": [(_ALL, float32_arithmetic)],
    "lstm_cell": [(_ALL, float32_arithmetic), (_ALL, gate_order)],
    "gru_cell": [(_ALL, float32_arithmetic), (_ALL, gate_order), (_ALL, reset_before_matmul)],
    "rnn_tanh": [(_ALL, float32_arithmetic), (_GRADIENTS, recurrent_gradient_dropped)],
    "lstm": [(_ALL, float32_arithmetic), (_ALL, gate_order), (_GRADIENTS, recurrent_gradient_dropped)],
    **{layer: [(_ALL, float32_arithmetic), (_ALL, scaled_by_d), (_ALL, softmax_over_queries), (_ALL, mask_inverted)]
       for layer in ("scaled_dot_product_attention", "multi_head_attention")},
}
"""The checks of each recurrent and attention layer, in the order they are tried."""
