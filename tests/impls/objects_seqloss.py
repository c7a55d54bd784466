"""Object-style layers named as in torch.nn, written from scratch: activations, PReLU, losses,
RNN/GRU/LSTM cells and batch-first multi-head attention (parameters set on attributes by refcheck,
gradients left on grad_<name> attributes)."""
import math

import numpy as np


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


class ELU:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype)

    def backward(self, dout):
        return np.where(self.x > 0, dout, dout * self.alpha * np.exp(np.minimum(self.x, 0))).astype(self.x.dtype)


class SiLU:
    def forward(self, x):
        self.x, self.s = x, _sigmoid(x)
        return x * self.s

    def backward(self, dout):
        return dout * self.s * (1 + self.x * (1 - self.s))


class Hardtanh:
    def __init__(self, min_val=-1.0, max_val=1.0):
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x):
        self.x = x
        return np.clip(x, self.min_val, self.max_val)

    def backward(self, dout):
        return dout * ((self.x > self.min_val) & (self.x < self.max_val))


class PReLU:
    def __init__(self, num_parameters=1):
        self.num_parameters = num_parameters

    def _w(self, x):
        return self.weight.reshape((1, -1) + (1,) * (x.ndim - 2)) if self.weight.size > 1 else self.weight

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, self._w(x) * x)

    def backward(self, dout):
        x = self.x
        grad = dout * x * (x <= 0)
        axes = tuple(a for a in range(x.ndim) if not (self.weight.size > 1 and a == 1))
        self.grad_weight = grad.sum(axis=axes).reshape(self.weight.shape).astype(self.weight.dtype)
        return np.where(x > 0, dout, self._w(x) * dout)


class L1Loss:
    def __init__(self, reduction="mean"):
        self.reduction = reduction

    def forward(self, input, target):
        self.diff = input - target
        loss = np.abs(self.diff)
        return loss if self.reduction == "none" else np.asarray(
            loss.mean() if self.reduction == "mean" else loss.sum(), dtype=input.dtype)

    def backward(self, dout):
        grad = np.sign(self.diff) * dout
        return grad / self.diff.size if self.reduction == "mean" else grad


class NLLLoss:
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def forward(self, input, target):
        if input.ndim != 2:
            raise NotImplementedError("(N, C) only")
        n, classes = input.shape
        weight = np.ones(classes, dtype=input.dtype) if self.weight is None else self.weight
        kept = target != self.ignore_index
        safe = np.where(kept, target, 0)
        self.w_t = np.where(kept, weight[safe], 0).astype(input.dtype)
        self.shape, self.safe = input.shape, safe
        losses = -self.w_t * input[np.arange(n), safe]
        if self.reduction == "none":
            return losses
        return np.asarray(losses.sum() / (self.w_t.sum() if self.reduction == "mean" else 1), dtype=input.dtype)

    def backward(self, dout):
        grad = np.zeros(self.shape, dtype=self.w_t.dtype)
        scale = dout / self.w_t.sum() if self.reduction == "mean" else dout
        grad[np.arange(self.shape[0]), self.safe] = -self.w_t * scale
        return grad


class RNNCell:
    def __init__(self, input_size, hidden_size, bias=True):
        self.bias = bias

    def forward(self, x, h):
        a = x @ self.weight_ih.T + h @ self.weight_hh.T
        if self.bias:
            a = a + self.bias_ih + self.bias_hh
        self.x, self.h, self.out = x, h, np.tanh(a)
        return self.out

    def backward(self, dout):
        da = dout * (1 - self.out ** 2)
        self.grad_weight_ih, self.grad_weight_hh = da.T @ self.x, da.T @ self.h
        self.grad_bias_ih = self.grad_bias_hh = da.sum(axis=0)
        return da @ self.weight_ih, da @ self.weight_hh


class LSTMCell:
    def __init__(self, input_size, hidden_size, bias=True):
        self.bias = bias

    def forward(self, x, state):
        h, c = state
        a = x @ self.weight_ih.T + h @ self.weight_hh.T
        if self.bias:
            a = a + self.bias_ih + self.bias_hh
        i, f, g, o = np.split(a, 4, axis=1)
        i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
        c_new = f * c + i * g
        self.saved = (x, h, c, i, f, g, o, np.tanh(c_new))
        return o * self.saved[-1], c_new

    def backward(self, dh, dc):
        x, h, c, i, f, g, o, tanh_c = self.saved
        dc = dc + dh * o * (1 - tanh_c ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g ** 2),
                             dh * tanh_c * o * (1 - o)], axis=1)
        self.grad_weight_ih, self.grad_weight_hh = da.T @ x, da.T @ h
        self.grad_bias_ih = self.grad_bias_hh = da.sum(axis=0)
        return da @ self.weight_ih, da @ self.weight_hh, dc * f


class MultiheadAttention:
    def __init__(self, embed_dim, num_heads, bias=True, batch_first=False):
        if not batch_first:
            raise ValueError("batch_first only")
        self.heads, self.bias = num_heads, bias

    def forward(self, query, key, value, attn_mask=None):
        if attn_mask is not None:
            raise NotImplementedError("no masks")
        n, length, e = query.shape
        d = e // self.heads
        b = self.in_proj_bias if self.bias else np.zeros(3 * e, dtype=query.dtype)
        self.inputs = (query, key, value)
        q, k, v = ((x @ self.in_proj_weight[j * e:(j + 1) * e].T + b[j * e:(j + 1) * e])
                   .reshape(n, x.shape[1], self.heads, d).transpose(0, 2, 1, 3) for j, x in enumerate(self.inputs))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
        w = np.exp(scores - scores.max(axis=-1, keepdims=True))
        w /= w.sum(axis=-1, keepdims=True)
        merged = (w @ v).transpose(0, 2, 1, 3).reshape(n, length, e)
        self.saved = (q, k, v, w, merged, d)
        out = merged @ self.out_proj_weight.T
        return (out + self.out_proj_bias if self.bias else out), None

    def backward(self, dout):
        q, k, v, w, merged, d = self.saved
        n, length, e = dout.shape
        self.grad_out_proj_weight = dout.reshape(-1, e).T @ merged.reshape(-1, e)
        self.grad_out_proj_bias = dout.reshape(-1, e).sum(axis=0)
        dm = (dout @ self.out_proj_weight).reshape(n, length, self.heads, d).transpose(0, 2, 1, 3)
        dv = w.transpose(0, 1, 3, 2) @ dm
        dw = dm @ v.transpose(0, 1, 3, 2)
        ds = w * (dw - (w * dw).sum(axis=-1, keepdims=True)) / math.sqrt(d)
        dq, dk = ds @ k, ds.transpose(0, 1, 3, 2) @ q
        self.grad_in_proj_weight = np.zeros_like(self.in_proj_weight)
        self.grad_in_proj_bias = np.zeros(3 * e, dtype=dout.dtype)
        grads = []
        for j, (x, dp) in enumerate(zip(self.inputs, (dq, dk, dv))):
            rows = dp.transpose(0, 2, 1, 3).reshape(-1, e)
            self.grad_in_proj_weight[j * e:(j + 1) * e] = rows.T @ x.reshape(-1, e)
            self.grad_in_proj_bias[j * e:(j + 1) * e] = rows.sum(axis=0)
            grads.append((rows @ self.in_proj_weight[j * e:(j + 1) * e]).reshape(x.shape))
        return tuple(grads)
