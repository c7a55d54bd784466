"""Attention whose default scale is 1 / d instead of 1 / sqrt(d): the built-in layers, with the
scale replaced (scaled_dot_product_attention) or the query projection divided by sqrt(d) once more
(multi_head_attention, whose gradient then carries the same factor)."""
import math

import numpy as np

from refcheck.layers import multi_head_attention_backward as _mha_backward
from refcheck.layers import multi_head_attention_forward as _mha_forward
from refcheck.layers import scaled_dot_product_attention_backward as scaled_dot_product_attention_backward
from refcheck.layers import scaled_dot_product_attention_forward as _sdpa_forward


def scaled_dot_product_attention_forward(query, key, value, attn_mask=None, *, dropout_p=0.0, is_causal=False,
                                         scale=None):
    scale = 1 / query.shape[-1] if scale is None else scale
    return _sdpa_forward(query, key, value, attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale)


def multi_head_attention_forward(query, key, value, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                                 attn_mask=None, *, num_heads):
    embed = query.shape[-1]
    factor = np.asarray(1 / math.sqrt(embed // num_heads), dtype=query.dtype)
    weight = in_proj_weight.copy()
    weight[:embed] *= factor
    bias = None if in_proj_bias is None else in_proj_bias.copy()
    if bias is not None:
        bias[:embed] *= factor
    out, cache = _mha_forward(query, key, value, weight, bias, out_proj_weight, out_proj_bias, attn_mask,
                              num_heads=num_heads)
    return out, (cache, embed, factor)


def multi_head_attention_backward(dout, cache):
    inner, embed, factor = cache
    grads = list(_mha_backward(dout, inner))
    grads[3][:embed] *= factor
    if grads[4] is not None:
        grads[4][:embed] *= factor
    return tuple(grads)
