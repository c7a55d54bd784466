"""torch calls for the recurrent and attention layers whose torch signature differs from the contract.

Each wrapper takes the contract's tensors positionally (None for an absent optional one) and its
hyperparameters as keywords, and returns what the contract's forward returns (a tuple for several
outputs). Attention runs on torch's math backend, the reference for fully masked rows (zeros).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["lstm", "lstm_cell", "multi_head_attention", "rnn_tanh", "scaled_dot_product_attention"]

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


def rnn_tanh(input: Tensor, h0: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None, bias_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """torch.nn.RNN (tanh, one layer, one direction, sequence-first): (output, h_n without the layer axis)."""
    params, has_biases = _params(weight_ih, weight_hh, bias_ih, bias_hh)
    hidden = weight_hh.shape[1]
    output, h_n = torch.rnn_tanh(input, _state(h0, input, hidden), params, has_biases, 1, 0.0, False, False, False)
    return output, h_n[0]


def lstm(input: Tensor, h0: Tensor | None, c0: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
         bias_ih: Tensor | None, bias_hh: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """torch.nn.LSTM (one layer, one direction, sequence-first): (output, h_n, c_n) without the layer axis."""
    params, has_biases = _params(weight_ih, weight_hh, bias_ih, bias_hh)
    hidden = weight_hh.shape[1]
    state = (_state(h0, input, hidden), _state(c0, input, hidden))
    output, h_n, c_n = torch.lstm(input, state, params, has_biases, 1, 0.0, False, False, False)
    return output, h_n[0], c_n[0]


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                                 dropout_p: float, is_causal: bool, scale: float | None) -> Tensor:
    """F.scaled_dot_product_attention on the math backend (fully masked rows give zeros there)."""
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p,
                                              is_causal=is_causal, scale=scale)


def multi_head_attention(query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor,
                         in_proj_bias: Tensor | None, out_proj_weight: Tensor, out_proj_bias: Tensor | None,
                         attn_mask: Tensor | None, *, num_heads: int) -> Tensor:
    """Batch-first (N, L, E) around the sequence-first F.multi_head_attention_forward, without weights."""
    embed = query.shape[-1]
    q, k, v = (t.transpose(0, 1) for t in (query, key, value))
    with sdpa_kernel(SDPBackend.MATH):
        out, _ = F.multi_head_attention_forward(
            q, k, v, embed, num_heads, in_proj_weight, in_proj_bias, None, None, False, 0.0,
            out_proj_weight, out_proj_bias, training=False, need_weights=False, attn_mask=attn_mask)
    return out.transpose(0, 1)
