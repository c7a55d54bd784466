"""Example implementation in the CS231n style: convolution, max pooling, affine, ReLU, softmax loss.

The functions follow the CS231n assignment signatures (``conv_param = {'stride', 'pad'}``, one value
for both axes; affine weight of shape (D, M)). refcheck checks them through
``refcheck.adapters`` with ``refcheck run --impl examples/cs231n_layers.py``.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "affine_backward",
    "affine_forward",
    "conv_backward_naive",
    "conv_forward_naive",
    "max_pool_backward_naive",
    "max_pool_forward_naive",
    "relu_backward",
    "relu_forward",
    "softmax_loss",
]


def conv_forward_naive(x, w, b, conv_param):
    """Convolution (cross-correlation) layer.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    w : ndarray of shape (F, C, HH, WW)
    b : ndarray of shape (F,)
    conv_param : dict with 'stride' and 'pad' (ints, same for both axes)

    Returns
    -------
    out : ndarray of shape (N, F, H', W'), H' = 1 + (H + 2 pad - HH) // stride (likewise W')
    cache : (x, w, b, conv_param, windows)
    """
    stride, pad = conv_param["stride"], conv_param["pad"]
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    # windows[n, c, i, j] is the (HH, WW) patch that output pixel (i, j) sees.
    windows = sliding_window_view(x_padded, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.einsum("ncijhw,fchw->nfij", windows, w, optimize=True) + b[None, :, None, None]
    return out, (x, w, b, conv_param, windows)


def conv_backward_naive(dout, cache):
    """Backward pass of the convolution: returns (dx, dw, db) shaped like (x, w, b)."""
    x, w, b, conv_param, windows = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    out_h, out_w = dout.shape[2:]
    dw = np.einsum("nfij,ncijhw->fchw", dout, windows, optimize=True)
    db = dout.sum(axis=(0, 2, 3))
    dx_padded = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * pad, x.shape[3] + 2 * pad),
                         dtype=x.dtype)
    for h in range(w.shape[2]):
        for k in range(w.shape[3]):
            # Input pixel (h + stride*i, k + stride*j) fed output (i, j) through weight tap (h, k).
            dx_padded[:, :, h:h + stride * out_h:stride, k:k + stride * out_w:stride] += np.einsum(
                "nfij,fc->ncij", dout, w[:, :, h, k])
    dx = dx_padded[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """Max pooling layer.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    pool_param : dict with 'pool_height', 'pool_width' and 'stride'

    Returns
    -------
    out : ndarray of shape (N, C, H', W'), H' = 1 + (H - pool_height) // stride (likewise W')
    cache : (x, pool_param, argmax)
    """
    pool_h, pool_w, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    windows = sliding_window_view(x, (pool_h, pool_w), axis=(2, 3))[:, :, ::stride, ::stride]
    flat = windows.reshape(*windows.shape[:4], pool_h * pool_w)
    argmax = flat.argmax(axis=-1)  # first maximum in row-major order, like torch
    out = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    return out, (x, pool_param, argmax)


def max_pool_backward_naive(dout, cache):
    """Backward pass of max pooling: dx shaped like x, dout routed to each window's maximum."""
    x, pool_param, argmax = cache
    pool_h, pool_w, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    out_h, out_w = dout.shape[2:]
    dx = np.zeros_like(x)
    for h in range(pool_h):
        for k in range(pool_w):
            chosen = argmax == h * pool_w + k
            dx[:, :, h:h + stride * out_h:stride, k:k + stride * out_w:stride] += dout * chosen
    return dx


def affine_forward(x, w, b):
    """Affine layer: x of shape (N, d_1, ..., d_k) flattened to (N, D), w (D, M), b (M,) -> (N, M)."""
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Backward pass of the affine layer: (dx shaped like x, dw (D, M), db (M,))."""
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """ReLU: max(0, x)."""
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    """Backward pass of ReLU: dout where x > 0."""
    x = cache
    return dout * (x > 0)


def softmax_loss(x, y):
    """Mean softmax cross-entropy of scores x (N, C) with labels y (N,); returns (loss, dx)."""
    shifted = x - x.max(axis=1, keepdims=True)  # for numerical stability
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -log_probs[np.arange(n), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    return loss, dx / n
