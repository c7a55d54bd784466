"""An LSTM cell written from scratch with CS231n's gate order i, f, o, g (torch stacks i, f, g, o)."""
import numpy as np


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def lstm_cell_forward(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    a = x @ weight_ih.T + h @ weight_hh.T
    if bias_ih is not None:
        a = a + bias_ih + bias_hh
    size = h.shape[1]
    i, f, o = (_sigmoid(a[:, k * size:(k + 1) * size]) for k in range(3))
    g = np.tanh(a[:, 3 * size:])
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    return (o * tanh_c, c_new), (x, h, c, weight_ih, weight_hh, bias_ih, i, f, o, g, tanh_c)


def lstm_cell_backward(douts, cache):
    dh, dc_new = douts
    x, h, c, weight_ih, weight_hh, bias_ih, i, f, o, g, tanh_c = cache
    dc = dc_new + dh * o * (1 - tanh_c * tanh_c)
    da = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f), dh * tanh_c * o * (1 - o),
                         dc * i * (1 - g * g)], axis=1)
    db = None if bias_ih is None else da.sum(axis=0)
    return da @ weight_ih, da @ weight_hh, dc * f, da.T @ x, da.T @ h, db, db
