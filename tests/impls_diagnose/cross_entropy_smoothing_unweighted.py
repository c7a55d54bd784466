"""cross_entropy written from scratch for (N, C) logits whose label-smoothing part ignores the class
weights: -(e / C) sum_c log p[n, c] instead of -(e / C) sum_c w[c] log p[n, c]."""
import numpy as np


def cross_entropy_forward(input, target, weight=None, *, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    dtype = input.dtype
    classes = input.shape[1]
    weight = np.ones(classes, dtype=dtype) if weight is None else weight
    shifted = input - input.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    kept = target != ignore_index
    safe = np.where(kept, target, 0)
    w_t = np.where(kept, weight[safe], 0).astype(dtype)
    nll = -w_t * log_p[np.arange(len(target)), safe]
    smooth = np.where(kept, -log_p.sum(axis=1), 0)  # planted: no class weights here
    divisor = w_t.sum() if reduction == "mean" else dtype.type(1)
    e = dtype.type(label_smoothing)
    loss = ((1 - e) * nll.sum() + e / classes * smooth.sum()) / divisor
    return np.asarray(loss, dtype=dtype), (log_p, safe, kept, w_t, divisor, e)


def cross_entropy_backward(dout, cache):
    log_p, safe, kept, w_t, divisor, e = cache
    classes = log_p.shape[1]
    scale = np.where(kept, dout / divisor, 0).astype(log_p.dtype)
    grad_log_p = np.zeros_like(log_p)
    grad_log_p[np.arange(len(safe)), safe] = -(1 - e) * w_t * scale
    grad_log_p -= (e / classes) * scale[:, None]
    return grad_log_p - np.exp(log_p) * grad_log_p.sum(axis=1, keepdims=True)
