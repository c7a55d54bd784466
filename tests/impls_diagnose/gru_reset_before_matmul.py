"""A GRU cell written from scratch with the reset gate applied to h before W_hn (the original
paper's form); torch applies it after the matmul, r * (W_hn h + b_hn)."""
import numpy as np


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def gru_cell_forward(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    size = h.shape[1]
    gx = x @ weight_ih.T + (0 if bias_ih is None else bias_ih)
    b = np.zeros(3 * size, dtype=x.dtype) if bias_hh is None else bias_hh
    w_r, w_z, w_n = weight_hh[:size], weight_hh[size:2 * size], weight_hh[2 * size:]
    r = _sigmoid(gx[:, :size] + h @ w_r.T + b[:size])
    z = _sigmoid(gx[:, size:2 * size] + h @ w_z.T + b[size:2 * size])
    reset = r * h
    n = np.tanh(gx[:, 2 * size:] + reset @ w_n.T + b[2 * size:])
    return (1 - z) * n + z * h, (x, h, weight_ih, weight_hh, bias_ih, r, z, n, reset)


def gru_cell_backward(dh, cache):
    x, h, weight_ih, weight_hh, bias_ih, r, z, n, reset = cache
    size = h.shape[1]
    w_r, w_z, w_n = weight_hh[:size], weight_hh[size:2 * size], weight_hh[2 * size:]
    dn = dh * (1 - z) * (1 - n * n)
    dz = dh * (h - n) * z * (1 - z)
    d_reset = dn @ w_n
    dr = d_reset * h * r * (1 - r)
    dh_previous = dh * z + d_reset * r + dr @ w_r + dz @ w_z
    dgates = np.concatenate([dr, dz, dn], axis=1)
    dw_hh = np.concatenate([dr.T @ h, dz.T @ h, dn.T @ reset])
    db = None if bias_ih is None else dgates.sum(axis=0)
    return dgates @ weight_ih, dh_previous, dgates.T @ x, dw_hh, db, db
