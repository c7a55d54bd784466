"""Slow loop twins of the recurrent and attention layers, independent oracles for the tests.

Recurrent: the sequences are walked one time step and one sample at a time with every gate's
weight block named on its own (``W_ii, W_if, ...``); the backward pass walks the steps in reverse
and accumulates each gradient with ``+=``. Attention: one (batch, head) slice and one query row at
a time, the softmax written out per row. Nothing here reuses refcheck.layers.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "lstm_loops",
    "multi_head_attention_loops",
    "rnn_tanh_loops",
    "scaled_dot_product_attention_loops",
]


def _sigmoid(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


def _blocks(array: np.ndarray | None, count: int, hidden: int) -> list[np.ndarray]:
    """Split a stacked weight or bias into its gate blocks; a missing bias is zeros."""
    if array is None:
        return [np.zeros(hidden) for _ in range(count)]
    return [array[k * hidden:(k + 1) * hidden] for k in range(count)]


def rnn_tanh_loops(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, d_output, d_h_n):
    """tanh RNN over (T, N, I), forward and backward: ((output, h_n), grads)."""
    steps, batch, _ = x.shape
    hidden = weight_hh.shape[0]
    b_ih = np.zeros(hidden) if bias_ih is None else bias_ih
    b_hh = np.zeros(hidden) if bias_hh is None else bias_hh
    h_start = np.zeros((batch, hidden)) if h0 is None else h0
    hs = np.zeros((steps + 1, batch, hidden))  # hs[t + 1] = h_t, hs[0] = h0
    hs[0] = h_start
    for t in range(steps):
        for n in range(batch):
            hs[t + 1, n] = np.tanh(weight_ih @ x[t, n] + b_ih + weight_hh @ hs[t, n] + b_hh)
    grads = [np.zeros_like(a) for a in (x, h_start, weight_ih, weight_hh)]
    grad_x, grad_h0, grad_w_ih, grad_w_hh = grads
    grad_b = np.zeros(hidden)
    for n in range(batch):
        dh = d_h_n[n].copy()
        for t in reversed(range(steps)):
            dh = dh + d_output[t, n]
            d_pre = dh * (1 - hs[t + 1, n] ** 2)
            grad_x[t, n] += weight_ih.T @ d_pre
            grad_w_ih += np.outer(d_pre, x[t, n])
            grad_w_hh += np.outer(d_pre, hs[t, n])
            grad_b += d_pre
            dh = weight_hh.T @ d_pre  # the recurrent gradient, to step t - 1
        grad_h0[n] = dh
    return (hs[1:].copy(), hs[-1].copy()), (
        grad_x, None if h0 is None else grad_h0, grad_w_ih, grad_w_hh,
        None if bias_ih is None else grad_b, None if bias_hh is None else grad_b.copy(),
    )


def lstm_loops(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, d_output, d_h_n, d_c_n):
    """LSTM over (T, N, I), gates i, f, g, o, forward and backward: ((output, h_n, c_n), grads)."""
    steps, batch, _ = x.shape
    hidden = weight_hh.shape[0] // 4
    w_ii, w_if, w_ig, w_io = _blocks(weight_ih, 4, hidden)
    w_hi, w_hf, w_hg, w_ho = _blocks(weight_hh, 4, hidden)
    b_i, b_f, b_g, b_o = (a + b for a, b in zip(_blocks(bias_ih, 4, hidden),
                                                 _blocks(bias_hh, 4, hidden)))
    hs = np.zeros((steps + 1, batch, hidden))
    cs = np.zeros((steps + 1, batch, hidden))
    if h0 is not None:
        hs[0] = h0
    if c0 is not None:
        cs[0] = c0
    gates = {name: np.zeros((steps, batch, hidden)) for name in "ifgo"}
    for t in range(steps):
        for n in range(batch):
            xt, h = x[t, n], hs[t, n]
            for j in range(hidden):
                i = _sigmoid(w_ii[j] @ xt + w_hi[j] @ h + b_i[j])
                f = _sigmoid(w_if[j] @ xt + w_hf[j] @ h + b_f[j])
                g = math.tanh(w_ig[j] @ xt + w_hg[j] @ h + b_g[j])
                o = _sigmoid(w_io[j] @ xt + w_ho[j] @ h + b_o[j])
                cs[t + 1, n, j] = f * cs[t, n, j] + i * g
                hs[t + 1, n, j] = o * math.tanh(cs[t + 1, n, j])
                for name, value in zip("ifgo", (i, f, g, o)):
                    gates[name][t, n, j] = value
    grad_x = np.zeros_like(x)
    grad_h0 = np.zeros((batch, hidden))
    grad_c0 = np.zeros((batch, hidden))
    grad_w_ih = np.zeros_like(weight_ih)
    grad_w_hh = np.zeros_like(weight_hh)
    grad_b = np.zeros(4 * hidden)
    for n in range(batch):
        dh = d_h_n[n].copy()
        dc = d_c_n[n].copy()
        for t in reversed(range(steps)):
            i, f, g, o = (gates[name][t, n] for name in "ifgo")
            dh = dh + d_output[t, n]
            tanh_c = np.tanh(cs[t + 1, n])
            dc = dc + dh * o * (1 - tanh_c ** 2)
            d_pre = np.concatenate([
                dc * g * i * (1 - i),
                dc * cs[t, n] * f * (1 - f),
                dc * i * (1 - g ** 2),
                dh * tanh_c * o * (1 - o),
            ])
            grad_x[t, n] += weight_ih.T @ d_pre
            grad_w_ih += np.outer(d_pre, x[t, n])
            grad_w_hh += np.outer(d_pre, hs[t, n])
            grad_b += d_pre
            dh = weight_hh.T @ d_pre
            dc = dc * f
        grad_h0[n] = dh
        grad_c0[n] = dc
    return (hs[1:].copy(), hs[-1].copy(), cs[-1].copy()), (
        grad_x, None if h0 is None else grad_h0, None if c0 is None else grad_c0,
        grad_w_ih, grad_w_hh,
        None if bias_ih is None else grad_b, None if bias_hh is None else grad_b.copy(),
    )


def _attention_rows(q, k, v, allowed, bias, scale, dout):
    """One (L, E) x (S, E) x (S, Ev) slice; allowed (L, S) bool, bias (L, S) additive.

    Returns (out, grad_q, grad_k, grad_v). A row with no allowed key gives zeros (torch's math
    backend) and sends no gradient.
    """
    rows, cols = q.shape[0], k.shape[0]
    out = np.zeros((rows, v.shape[1]))
    grad_q, grad_k, grad_v = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    for l in range(rows):
        keys = [s for s in range(cols) if allowed[l, s] and bias[l, s] != -math.inf]
        if not keys:
            continue
        scores = {s: float(q[l] @ k[s]) * scale + bias[l, s] for s in keys}
        top = max(scores.values())
        total = sum(math.exp(value - top) for value in scores.values())
        weights = {s: math.exp(scores[s] - top) / total for s in keys}
        for s in keys:
            out[l] += weights[s] * v[s]
        d_weights = {s: float(dout[l] @ v[s]) for s in keys}
        mean = sum(weights[s] * d_weights[s] for s in keys)
        for s in keys:
            grad_v[s] += weights[s] * dout[l]
            d_score = weights[s] * (d_weights[s] - mean)
            grad_q[l] += d_score * scale * k[s]
            grad_k[s] += d_score * scale * q[l]
    return out, grad_q, grad_k, grad_v


def scaled_dot_product_attention_loops(query, key, value, attn_mask, dout, *, is_causal=False,
                                       scale=None):
    """SDPA over (N, ..., L, E): (out, (grad_query, grad_key, grad_value)), float64."""
    length, source = query.shape[-2], key.shape[-2]
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    allowed = np.ones((length, source), dtype=bool)
    if is_causal:
        allowed = np.tril(allowed)
    lead = query.shape[:-2]
    allowed = np.broadcast_to(allowed, lead + (length, source))
    bias = np.zeros(lead + (length, source))
    if attn_mask is not None and attn_mask.dtype == bool:
        allowed = allowed & np.broadcast_to(attn_mask, allowed.shape)
    elif attn_mask is not None:
        bias = bias + attn_mask
    out = np.zeros(lead + (length, value.shape[-1]))
    grads = [np.zeros_like(query), np.zeros_like(key), np.zeros_like(value)]
    for index in np.ndindex(*lead):
        result = _attention_rows(query[index], key[index], value[index], allowed[index],
                                 bias[index], scale, dout[index])
        out[index] = result[0]
        for grad, part in zip(grads, result[1:]):
            grad[index] = part
    return out, tuple(grads)


def multi_head_attention_loops(query, key, value, in_proj_weight, in_proj_bias, out_proj_weight,
                               out_proj_bias, dout, *, num_heads, attn_mask=None):
    """Batch-first multi-head attention, one head at a time: (out, grads) in float64.

    attn_mask follows torch.nn.MultiheadAttention: boolean True means *not* allowed, a float
    mask is added; shape (L, S) or (N * num_heads, L, S).
    """
    batch, length, embed = query.shape
    head_dim = embed // num_heads
    w_q, w_k, w_v = _blocks(in_proj_weight, 3, embed)
    b_q, b_k, b_v = _blocks(in_proj_bias, 3, embed)
    out = np.zeros_like(query)
    grads = [np.zeros_like(a) for a in (query, key, value, in_proj_weight, out_proj_weight)]
    grad_query, grad_key, grad_value, grad_in_w, grad_out_w = grads
    grad_in_b = np.zeros(3 * embed)
    grad_out_b = dout.sum(axis=(0, 1))
    for n in range(batch):
        heads_out = np.zeros((length, embed))
        d_heads_out = dout[n] @ out_proj_weight
        for head in range(num_heads):
            part = slice(head * head_dim, (head + 1) * head_dim)
            q = query[n] @ w_q[part].T + b_q[part]
            k = key[n] @ w_k[part].T + b_k[part]
            v = value[n] @ w_v[part].T + b_v[part]
            mask = None
            if attn_mask is not None:
                mask = attn_mask if attn_mask.ndim == 2 else attn_mask[n * num_heads + head]
                if mask.dtype == bool:
                    mask = ~mask  # torch MHA: True = masked out; the twin's SDPA: True = allowed
            o, (dq, dk, dv) = scaled_dot_product_attention_loops(
                q[None], k[None], v[None], None if mask is None else mask[None],
                d_heads_out[None, :, part],
            )
            heads_out[:, part] = o[0]
            for grad_in, d, inp, block in ((grad_query, dq, query, 0), (grad_key, dk, key, 1),
                                           (grad_value, dv, value, 2)):
                rows = slice(block * embed + head * head_dim, block * embed + (head + 1) * head_dim)
                grad_in[n] += d[0] @ in_proj_weight[rows]
                grad_in_w[rows] += d[0].T @ inp[n]
                grad_in_b[rows] += d[0].sum(axis=0)
        out[n] = heads_out @ out_proj_weight.T + (0 if out_proj_bias is None else out_proj_bias)
        grad_out_w += dout[n].T @ heads_out
    return out, (grad_query, grad_key, grad_value, grad_in_w,
                 None if in_proj_bias is None else grad_in_b, grad_out_w,
                 None if out_proj_bias is None else grad_out_b)
