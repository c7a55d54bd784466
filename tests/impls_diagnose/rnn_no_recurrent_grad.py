"""A tanh RNN over a sequence whose backward forgets the gradient h_{t-1} receives from step t."""
import numpy as np


def rnn_tanh_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    h = np.zeros((x.shape[1], weight_hh.shape[0]), dtype=x.dtype) if h0 is None else h0
    states, previous = [], []
    for t in range(x.shape[0]):
        a = x[t] @ weight_ih.T + h @ weight_hh.T
        if bias_ih is not None:
            a = a + bias_ih + bias_hh
        previous.append(h)
        h = np.tanh(a)
        states.append(h)
    output = np.stack(states)
    return (output, h.copy()), (x, h0, weight_ih, weight_hh, bias_ih, output, previous)


def rnn_tanh_backward(douts, cache):
    d_output, d_h_n = douts
    x, h0, weight_ih, weight_hh, bias_ih, output, previous = cache
    steps = x.shape[0]
    dx = np.zeros_like(x)
    dw_ih, dw_hh = np.zeros_like(weight_ih), np.zeros_like(weight_hh)
    db = np.zeros(weight_hh.shape[0], dtype=x.dtype)
    for t in reversed(range(steps)):
        dh = d_output[t] + (d_h_n if t == steps - 1 else 0)  # planted: no gradient from step t + 1
        da = dh * (1 - output[t] ** 2)
        dx[t] = da @ weight_ih
        dw_ih += da.T @ x[t]
        dw_hh += da.T @ previous[t]
        db += da.sum(axis=0)
        dh_previous = da @ weight_hh
    bias_grad = None if bias_ih is None else db
    return dx, None if h0 is None else dh_previous, dw_ih, dw_hh, bias_grad, bias_grad
