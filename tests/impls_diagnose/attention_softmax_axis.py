"""Scaled dot-product attention written from scratch (no mask) with the softmax over the query
axis: each key's column of weights sums to 1 instead of each query's row."""
import math

import numpy as np


def scaled_dot_product_attention_forward(query, key, value, attn_mask=None, *, is_causal=False, scale=None):
    if attn_mask is not None or is_causal:
        raise NotImplementedError("no masks here")
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = query @ np.swapaxes(key, -1, -2) * scale
    exps = np.exp(scores - scores.max(axis=-2, keepdims=True))
    weights = exps / exps.sum(axis=-2, keepdims=True)  # planted: the query axis
    return weights @ value, (query, key, value, weights, scale)


def scaled_dot_product_attention_backward(dout, cache):
    query, key, value, weights, scale = cache
    d_weights = dout @ np.swapaxes(value, -1, -2)
    d_scores = weights * (d_weights - (weights * d_weights).sum(axis=-2, keepdims=True)) * scale
    return d_scores @ key, np.swapaxes(d_scores, -1, -2) @ query, np.swapaxes(weights, -1, -2) @ dout
