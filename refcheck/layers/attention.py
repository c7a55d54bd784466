"""Attention layers in numpy: ``scaled_dot_product_attention`` and ``multi_head_attention``.

Each layer is a pair of pure functions following the implementation contract:
``<layer>_forward(...) -> (out, cache)`` and ``<layer>_backward(dout, cache) -> gradients``.

A query row whose every key is masked out gives an output row of zeros and sends no gradient,
as torch's math backend does on CPU (torch 2.5 and later; its ``_safe_softmax`` turns a row of
``-inf`` scores into zero weights instead of NaN). torch.nn.MultiheadAttention with
``need_weights=True`` still returns NaN for such a row; only ``need_weights=False`` is offered here.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "multi_head_attention_backward",
    "multi_head_attention_forward",
    "scaled_dot_product_attention_backward",
    "scaled_dot_product_attention_forward",
]

Array = np.ndarray


def _safe_softmax(scores: Array) -> Array:
    """Softmax over the last axis; a row of all ``-inf`` gives zeros, not NaN."""
    top = scores.max(axis=-1, keepdims=True)
    top = np.where(np.isneginf(top), 0, top)  # avoids -inf - -inf on fully masked rows
    exps = np.exp(scores - top)
    total = exps.sum(axis=-1, keepdims=True)
    return exps / np.where(total == 0, 1, total)


def _attention_bias(
    attn_mask: Array | None, is_causal: bool, length: int, source: int, dtype: np.dtype
) -> Array | None:
    """The additive (..., L, S) term: 0 where a key takes part, -inf where it is masked."""
    if is_causal:
        # Top-left aligned: query l sees keys 0..l (torch's tril over the (L, S) matrix).
        causal = np.tril(np.ones((length, source), dtype=bool))
        return np.where(causal, 0, -np.inf).astype(dtype)
    if attn_mask is None:
        return None
    if attn_mask.dtype == np.bool_:
        return np.where(attn_mask, 0, -np.inf).astype(dtype)
    return attn_mask.astype(dtype, copy=False)


def _attend(query, key, value, bias, scale):
    """softmax(query @ key^T * scale + bias) @ value; returns (out, weights)."""
    scores = np.matmul(query, np.swapaxes(key, -1, -2)) * scale
    if bias is not None:
        scores = scores + bias
    weights = _safe_softmax(scores)
    return np.matmul(weights, value), weights


def _attend_backward(dout, query, key, value, weights, scale):
    """Gradients of :func:`_attend` for query, key and value."""
    grad_value = np.matmul(np.swapaxes(weights, -1, -2), dout)
    d_weights = np.matmul(dout, np.swapaxes(value, -1, -2))
    # Softmax Jacobian per row: w * (dw - sum(w * dw)); zero rows (fully masked) stay zero.
    d_scores = weights * (d_weights - (weights * d_weights).sum(axis=-1, keepdims=True))
    d_scores = d_scores * scale
    grad_query = np.matmul(d_scores, key)
    grad_key = np.matmul(np.swapaxes(d_scores, -1, -2), query)
    return grad_query, grad_key, grad_value


def scaled_dot_product_attention_forward(
    query: Array, key: Array, value: Array, attn_mask: Array | None = None, *,
    dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
) -> tuple[Array, tuple[Any, ...]]:
    """Attention ``softmax(query @ key^T * scale + mask) @ value`` over the last two axes.

    As ``torch.nn.functional.scaled_dot_product_attention`` (math backend), without dropout.

    Parameters
    ----------
    query : ndarray of shape (N, ..., L, E)
    key : ndarray of shape (N, ..., S, E)
    value : ndarray of shape (N, ..., S, Ev)
        The leading axes (N, ...) of the three must be equal.
    attn_mask : ndarray broadcastable to (N, ..., L, S), or None
        Boolean: True means the key takes part (the opposite of torch.nn.MultiheadAttention's
        boolean masks). Float: added to the scores (``-inf`` masks out). Not differentiated.
    dropout_p : float
        Only 0 is supported (dropout would need an explicit random mask).
    is_causal : bool
        Query ``l`` sees keys ``0..l`` (a top-left aligned lower triangle, also when L != S).
        Cannot be combined with ``attn_mask``.
    scale : float or None
        Factor on the scores; None means ``1 / sqrt(E)``.

    Returns
    -------
    out : ndarray of shape (N, ..., L, Ev), dtype of ``query``
        A query row with every key masked out is zeros (torch's math backend).
    cache : tuple
    """
    query, key, value = (np.asarray(a) for a in (query, key, value))
    if dropout_p != 0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p={dropout_p} is not supported "
                         "(only 0)")
    if query.ndim < 2 or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError("scaled_dot_product_attention: query, key and value need the same "
                         f"number of axes (at least 2); got {query.shape}, {key.shape}, "
                         f"{value.shape}")
    if (query.shape[:-2] != key.shape[:-2] or key.shape[:-2] != value.shape[:-2]
            or query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]):
        raise ValueError(
            f"scaled_dot_product_attention: query {query.shape}, key {key.shape} and value "
            f"{value.shape} should be (N, ..., L, E), (N, ..., S, E) and (N, ..., S, Ev)"
        )
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: is_causal=True needs attn_mask=None")
    length, source = query.shape[-2], key.shape[-2]
    mask = None if attn_mask is None else np.asarray(attn_mask)
    if mask is not None:
        try:
            np.broadcast_shapes(mask.shape, query.shape[:-2] + (length, source))
        except ValueError:
            raise ValueError(
                f"scaled_dot_product_attention: attn_mask {mask.shape} does not broadcast to "
                f"{query.shape[:-2] + (length, source)}"
            ) from None
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    bias = _attention_bias(mask, is_causal, length, source, query.dtype)
    out, weights = _attend(query, key, value, bias, scale)
    return out.astype(query.dtype, copy=False), (query, key, value, weights, scale)


def scaled_dot_product_attention_backward(
    dout: Array, cache: tuple[Any, ...]
) -> tuple[Array, Array, Array]:
    """Gradients of :func:`scaled_dot_product_attention_forward`.

    Parameters
    ----------
    dout : ndarray of shape (N, ..., L, Ev)
    cache : tuple

    Returns
    -------
    grad_query, grad_key, grad_value
        Shapes of query, key and value. attn_mask gets no gradient.
    """
    query, key, value, weights, scale = cache
    grads = _attend_backward(np.asarray(dout, dtype=query.dtype), query, key, value, weights,
                             scale)
    return tuple(g.astype(a.dtype, copy=False) for g, a in zip(grads, (query, key, value)))


def _split_heads(x: Array, num_heads: int) -> Array:
    """(N, L, E) -> (N, heads, L, E // heads)."""
    batch, length, embed = x.shape
    return x.reshape(batch, length, num_heads, embed // num_heads).transpose(0, 2, 1, 3)


def _merge_heads(x: Array) -> Array:
    """(N, heads, L, d) -> (N, L, heads * d)."""
    batch, heads, length, head_dim = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, length, heads * head_dim)


def multi_head_attention_forward(
    query: Array, key: Array, value: Array, in_proj_weight: Array, in_proj_bias: Array | None,
    out_proj_weight: Array, out_proj_bias: Array | None, attn_mask: Array | None = None, *,
    num_heads: int, need_weights: bool = False,
) -> tuple[Array, tuple[Any, ...]]:
    """Multi-head attention as ``torch.nn.MultiheadAttention(batch_first=True)``.

    The contract's layout is batch-first (N, L, E), as torch.nn.MultiheadAttention(batch_first=True),
    unlike ``torch.nn.functional.multi_head_attention_forward`` which is sequence-first (L, N, E);
    the mask comes after the tensors, positionally, like scaled_dot_product_attention's. With ``W_q, W_k, W_v`` the three row blocks of ``in_proj_weight``:
    ``q = query @ W_q.T + b_q`` (same for k, v), split into ``num_heads`` heads of
    ``d = E // num_heads`` features, ``softmax(q_h @ k_h^T / sqrt(d) + mask) @ v_h`` per head,
    heads concatenated, then ``@ out_proj_weight.T + out_proj_bias``.

    Parameters
    ----------
    query : ndarray of shape (N, L, E)
    key, value : ndarray of shape (N, S, E)
    in_proj_weight : ndarray of shape (3 * E, E)
    in_proj_bias : ndarray of shape (3 * E,) or None
    out_proj_weight : ndarray of shape (E, E)
    out_proj_bias : ndarray of shape (E,) or None
    num_heads : int
        At least 1, and E must be divisible by it.
    attn_mask : ndarray of shape (L, S) or (N * num_heads, L, S), or None
        torch.nn.MultiheadAttention's convention: boolean True means the key is *not* allowed;
        a float mask is added to the scores. Not differentiated.
    need_weights : bool
        Only False (the attention weights are not returned).

    Returns
    -------
    out : ndarray of shape (N, L, E), dtype of ``query``
    cache : tuple
    """
    query, key, value, in_proj_weight, out_proj_weight = (
        np.asarray(a) for a in (query, key, value, in_proj_weight, out_proj_weight))
    in_proj_bias = None if in_proj_bias is None else np.asarray(in_proj_bias)
    out_proj_bias = None if out_proj_bias is None else np.asarray(out_proj_bias)
    if need_weights:
        raise ValueError("multi_head_attention: need_weights=True is not supported")
    if query.ndim != 3:
        raise ValueError(f"multi_head_attention: query {query.shape} should be (N, L, E)")
    batch, length, embed = query.shape
    if not isinstance(num_heads, int) or num_heads < 1 or embed % num_heads:
        raise ValueError(
            f"multi_head_attention: embed_dim {embed} must be divisible by num_heads {num_heads}"
        )
    if key.ndim != 3 or key.shape[0] != batch or key.shape[2] != embed or key.shape != value.shape:
        raise ValueError(f"multi_head_attention: key {key.shape} and value {value.shape} should "
                         f"both be ({batch}, S, {embed})")
    if in_proj_weight.shape != (3 * embed, embed) or out_proj_weight.shape != (embed, embed):
        raise ValueError(f"multi_head_attention: in_proj_weight {in_proj_weight.shape} and "
                         f"out_proj_weight {out_proj_weight.shape} should be ({3 * embed}, "
                         f"{embed}) and ({embed}, {embed})")
    if in_proj_bias is not None and in_proj_bias.shape != (3 * embed,):
        raise ValueError(f"multi_head_attention: in_proj_bias {in_proj_bias.shape} should be "
                         f"({3 * embed},)")
    if out_proj_bias is not None and out_proj_bias.shape != (embed,):
        raise ValueError(f"multi_head_attention: out_proj_bias {out_proj_bias.shape} should be "
                         f"({embed},)")
    source = key.shape[1]
    bias = None
    if attn_mask is not None:
        mask = np.asarray(attn_mask)
        if mask.shape == (length, source):
            mask = mask[None, None]
        elif mask.shape == (batch * num_heads, length, source):
            mask = mask.reshape(batch, num_heads, length, source)
        else:
            raise ValueError(f"multi_head_attention: attn_mask {mask.shape} should be "
                             f"({length}, {source}) or ({batch * num_heads}, {length}, {source})")
        # Boolean True = masked out here (the opposite of scaled_dot_product_attention).
        bias = _attention_bias(~mask if mask.dtype == np.bool_ else mask, False, length, source,
                               query.dtype)
    projections = []
    for block, x in enumerate((query, key, value)):
        rows = slice(block * embed, (block + 1) * embed)
        projected = np.matmul(x, in_proj_weight[rows].T)
        if in_proj_bias is not None:
            projected = projected + in_proj_bias[rows]
        projections.append(_split_heads(projected, num_heads))
    q, k, v = projections
    scale = 1 / math.sqrt(embed // num_heads)
    heads_out, weights = _attend(q, k, v, bias, scale)
    merged = _merge_heads(heads_out)
    out = np.matmul(merged, out_proj_weight.T)
    if out_proj_bias is not None:
        out = out + out_proj_bias
    cache = (query, key, value, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
             q, k, v, weights, merged, scale)
    return out.astype(query.dtype, copy=False), cache


def multi_head_attention_backward(
    dout: Array, cache: tuple[Any, ...]
) -> tuple[Array | None, ...]:
    """Gradients of :func:`multi_head_attention_forward`.

    Parameters
    ----------
    dout : ndarray of shape (N, L, E)
    cache : tuple

    Returns
    -------
    grad_query, grad_key, grad_value, grad_in_proj_weight, grad_in_proj_bias,
    grad_out_proj_weight, grad_out_proj_bias
        Shapes of the inputs; a bias gradient is None when that bias was None. When the same
        array is passed as query, key and value (self-attention) the three gradients are
        separate; their sum is the gradient of that shared array.
    """
    (query, key, value, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
     q, k, v, weights, merged, scale) = cache
    dtype = query.dtype
    dout = np.asarray(dout, dtype=dtype)
    embed = query.shape[-1]
    num_heads = q.shape[1]
    dout_rows = dout.reshape(-1, embed)
    grad_out_proj_weight = np.matmul(dout_rows.T, merged.reshape(-1, embed))
    grad_out_proj_bias = None if out_proj_bias is None else dout_rows.sum(axis=0)
    d_heads = _split_heads(np.matmul(dout, out_proj_weight), num_heads)
    d_projections = _attend_backward(d_heads, q, k, v, weights, scale)
    grad_in_proj_weight = np.empty_like(in_proj_weight, dtype=dtype)
    grad_in_proj_bias = None if in_proj_bias is None else np.empty(3 * embed, dtype=dtype)
    grad_inputs = []
    for block, (x, d_projected) in enumerate(zip((query, key, value), d_projections)):
        rows = slice(block * embed, (block + 1) * embed)
        d_projected = _merge_heads(d_projected)  # (N, L or S, E)
        d_rows = d_projected.reshape(-1, embed)
        grad_inputs.append(np.matmul(d_projected, in_proj_weight[rows]).astype(x.dtype))
        grad_in_proj_weight[rows] = np.matmul(d_rows.T, x.reshape(-1, embed))
        if grad_in_proj_bias is not None:
            grad_in_proj_bias[rows] = d_rows.sum(axis=0)
    return (
        *grad_inputs,
        grad_in_proj_weight.astype(in_proj_weight.dtype, copy=False),
        None if in_proj_bias is None else grad_in_proj_bias.astype(in_proj_bias.dtype),
        grad_out_proj_weight.astype(out_proj_weight.dtype, copy=False),
        None if out_proj_bias is None else grad_out_proj_bias.astype(out_proj_bias.dtype),
    )
