"""torch calls for the recurrent and attention layers whose torch signature differs from the contract.

Each wrapper takes the contract's tensors positionally (None for an absent optional one) and its
hyperparameters as keywords, and returns what the contract's forward returns (a tuple for several
outputs). Attention runs on torch's math backend, the reference for fully masked rows (zeros).

``variant`` (never set by the checking path) recomputes a classic mistake with torch's autograd,
for the diagnoses: ``no_recurrent_grad`` (the gradient of h_{t-1} through the next step is
dropped), ``reset_before_matmul`` (GRU: ``W_hn (r * h)`` instead of ``r * (W_hn h + b_hn)``),
``scale_by_d`` (attention scores divided by d, not sqrt(d)), ``softmax_over_queries`` (the
softmax normalises over the query axis instead of the key axis).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["gru_cell", "lstm", "lstm_cell", "multi_head_attention", "rnn_tanh", "scaled_dot_product_attention"]

Tensor = torch.Tensor


def lstm_cell(input: Tensor, hx: Tensor, cx: Tensor, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None, bias_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """torch.lstm_cell takes the state as one (hx, cx) pair."""
    h_1, c_1 = torch.lstm_cell(input, (hx, cx), weight_ih, weight_hh, bias_ih, bias_hh)
    return h_1, c_1


def _state(state: Tensor | None, input: Tensor, hidden: int) -> Tensor:
    """A (1, N, H) initial state for torch's sequence functions; zeros (no gradient) for None."""
    if state is None:
        return torch.zeros((1, input.shape[1], hidden), dtype=input.dtype)
    return state.unsqueeze(0)


def _params(weight_ih, weight_hh, bias_ih, bias_hh) -> tuple[list[Tensor], bool]:
    if bias_ih is None:
        return [weight_ih, weight_hh], False
    return [weight_ih, weight_hh, bias_ih, bias_hh], True


def gru_cell(input: Tensor, hx: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None,
             bias_hh: Tensor | None, *, variant: str = "") -> Tensor:
    """torch.gru_cell; with variant='reset_before_matmul', the reset gate applied to h before W_hn."""
    if variant != "reset_before_matmul":
        return torch.gru_cell(input, hx, weight_ih, weight_hh, bias_ih, bias_hh)
    x_r, x_z, x_n = F.linear(input, weight_ih, bias_ih).chunk(3, dim=-1)
    w_r, w_z, w_n = weight_hh.chunk(3)
    b_r, b_z, b_n = (None, None, None) if bias_hh is None else bias_hh.chunk(3)
    r = torch.sigmoid(x_r + F.linear(hx, w_r, b_r))
    z = torch.sigmoid(x_z + F.linear(hx, w_z, b_z))
    n = torch.tanh(x_n + F.linear(r * hx, w_n, b_n))
    return (1 - z) * n + z * hx


def _unrolled(cell, input: Tensor, states: list[Tensor], detach: bool) -> tuple[Tensor, list[Tensor]]:
    """A sequence step by step; ``detach`` cuts the gradient of h_{t-1} through step t (t >= 1)."""
    outputs = []
    for t in range(input.shape[0]):
        if detach and t > 0:
            states = [states[0].detach()] + states[1:]
        states = cell(input[t], states)
        outputs.append(states[0])
    return torch.stack(outputs), states


def rnn_tanh(input: Tensor, h0: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None, bias_hh: Tensor | None, *, variant: str = "") -> tuple[Tensor, Tensor]:
    """torch.nn.RNN (tanh, one layer, one direction, sequence-first): (output, h_n without the layer axis)."""
    params, has_biases = _params(weight_ih, weight_hh, bias_ih, bias_hh)
    hidden = weight_hh.shape[1]
    if variant == "no_recurrent_grad":
        def cell(x, states):
            return [torch.rnn_tanh_cell(x, states[0], weight_ih, weight_hh, bias_ih, bias_hh)]
        output, (h_n,) = _unrolled(cell, input, [_state(h0, input, hidden)[0]], detach=True)
        return output, h_n
    output, h_n = torch.rnn_tanh(input, _state(h0, input, hidden), params, has_biases, 1, 0.0, False, False, False)
    return output, h_n[0]


def lstm(input: Tensor, h0: Tensor | None, c0: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
         bias_ih: Tensor | None, bias_hh: Tensor | None, *, variant: str = "") -> tuple[Tensor, Tensor, Tensor]:
    """torch.nn.LSTM (one layer, one direction, sequence-first): (output, h_n, c_n) without the layer axis."""
    params, has_biases = _params(weight_ih, weight_hh, bias_ih, bias_hh)
    hidden = weight_hh.shape[1]
    if variant == "no_recurrent_grad":  # the cell state's gradient still flows back
        def cell(x, states):
            return list(torch.lstm_cell(x, (states[0], states[1]), weight_ih, weight_hh, bias_ih, bias_hh))
        initial = [_state(h0, input, hidden)[0], _state(c0, input, hidden)[0]]
        output, (h_n, c_n) = _unrolled(cell, input, initial, detach=True)
        return output, h_n, c_n
    state = (_state(h0, input, hidden), _state(c0, input, hidden))
    output, h_n, c_n = torch.lstm(input, state, params, has_biases, 1, 0.0, False, False, False)
    return output, h_n[0], c_n[0]


def _attention(query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None, scale: float, variant: str) -> Tensor:
    """softmax(q k^T * scale + bias) v written out, for the mistaken variants."""
    scores = query @ key.transpose(-1, -2) * scale
    if bias is not None:
        scores = scores + bias
    weights = torch.softmax(scores, dim=-2 if variant == "softmax_over_queries" else -1)
    return torch.nan_to_num(weights, nan=0.0) @ value


def _additive(mask: Tensor | None, keep_when_true: bool, dtype: torch.dtype) -> Tensor | None:
    if mask is None or mask.dtype != torch.bool:
        return mask
    allowed = mask if keep_when_true else ~mask
    return torch.zeros(mask.shape, dtype=dtype).masked_fill(~allowed, float("-inf"))


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                                 dropout_p: float, is_causal: bool, scale: float | None, variant: str = "") -> Tensor:
    """F.scaled_dot_product_attention on the math backend (fully masked rows give zeros there)."""
    if variant:
        length, source, embed = query.shape[-2], key.shape[-2], query.shape[-1]
        if is_causal:
            attn_mask = torch.ones((length, source), dtype=torch.bool).tril()
        factor = scale if scale is not None else (1 / embed if variant == "scale_by_d" else embed ** -0.5)
        return _attention(query, key, value, _additive(attn_mask, True, query.dtype), factor, variant)
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p,
                                              is_causal=is_causal, scale=scale)


def multi_head_attention(query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor,
                         in_proj_bias: Tensor | None, out_proj_weight: Tensor, out_proj_bias: Tensor | None,
                         attn_mask: Tensor | None, *, num_heads: int, variant: str = "") -> Tensor:
    """Batch-first (N, L, E) around the sequence-first F.multi_head_attention_forward, without weights."""
    embed = query.shape[-1]
    if variant:
        return _mha_written_out(query, key, value, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                                attn_mask, num_heads, variant)
    q, k, v = (t.transpose(0, 1) for t in (query, key, value))
    with sdpa_kernel(SDPBackend.MATH):
        out, _ = F.multi_head_attention_forward(
            q, k, v, embed, num_heads, in_proj_weight, in_proj_bias, None, None, False, 0.0,
            out_proj_weight, out_proj_bias, training=False, need_weights=False, attn_mask=attn_mask)
    return out.transpose(0, 1)


def _mha_written_out(query, key, value, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, attn_mask,
                     num_heads: int, variant: str) -> Tensor:
    batch, length, embed = query.shape
    head_dim = embed // num_heads
    biases = (None, None, None) if in_proj_bias is None else in_proj_bias.chunk(3)
    heads = [F.linear(x, w, b).reshape(batch, x.shape[1], num_heads, head_dim).transpose(1, 2)
             for x, w, b in zip((query, key, value), in_proj_weight.chunk(3), biases)]
    bias = _additive(attn_mask, False, query.dtype)
    if bias is not None and bias.dim() == 3:
        bias = bias.reshape(batch, num_heads, length, -1)
    scale = 1 / head_dim if variant == "scale_by_d" else head_dim ** -0.5
    out = _attention(*heads, bias, scale, variant).transpose(1, 2).reshape(batch, length, embed)
    return F.linear(out, out_proj_weight, out_proj_bias)
