"""Recurrent cells, one step: ``rnn_tanh_cell``, ``lstm_cell`` and ``gru_cell`` (torch's layouts).

See :mod:`refcheck.layers.recurrent` for the layouts and gate orders.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .recurrent_steps import (
    Array,
    _asarray,
    _cast,
    _check,
    _gru_step,
    _gru_step_backward,
    _hidden_side_grads,
    _input_side,
    _input_side_grads,
    _lstm_step,
    _lstm_step_backward,
    _rnn_step,
    _rnn_step_backward,
)

__all__ = [
    "gru_cell_backward",
    "gru_cell_forward",
    "lstm_cell_backward",
    "lstm_cell_forward",
    "rnn_tanh_cell_backward",
    "rnn_tanh_cell_forward",
]

# ---------------------------------------------------------------------------------------------
# Cells


def rnn_tanh_cell_forward(
    x: Array, h: Array, weight_ih: Array, weight_hh: Array,
    bias_ih: Array | None, bias_hh: Array | None,
) -> tuple[Array, tuple[Any, ...]]:
    """One tanh RNN step (``torch.nn.RNNCell``, ``torch.rnn_tanh_cell``).

    ``h' = tanh(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)``

    Parameters
    ----------
    x : ndarray of shape (N, input_size)
    h : ndarray of shape (N, hidden_size)
    weight_ih : ndarray of shape (hidden_size, input_size)
    weight_hh : ndarray of shape (hidden_size, hidden_size)
    bias_ih, bias_hh : ndarray of shape (hidden_size,) or None

    Returns
    -------
    h_new : ndarray of shape (N, hidden_size), dtype of ``x``
    cache : tuple
    """
    x, h, weight_ih, weight_hh = (np.asarray(a) for a in (x, h, weight_ih, weight_hh))
    bias_ih, bias_hh = _asarray(bias_ih), _asarray(bias_hh)
    _check("rnn_tanh_cell", x, [("h", h)], weight_ih, weight_hh, bias_ih, bias_hh, 1, False)
    h_new = _rnn_step(_input_side(x, weight_ih, bias_ih), h, weight_hh, bias_hh)
    h_new = h_new.astype(x.dtype, copy=False)
    return h_new, (x, h, weight_ih, weight_hh, bias_ih, bias_hh, h_new)


def rnn_tanh_cell_backward(dh_new: Array, cache: tuple[Any, ...]) -> tuple[Array | None, ...]:
    """Gradients of :func:`rnn_tanh_cell_forward`.

    Parameters
    ----------
    dh_new : ndarray of shape (N, hidden_size)
    cache : tuple

    Returns
    -------
    grad_x, grad_h, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh
        Shapes of the inputs; a bias gradient is None when that bias was None.
    """
    x, h, weight_ih, weight_hh, bias_ih, bias_hh, h_new = cache
    d_pre = _rnn_step_backward(np.asarray(dh_new, dtype=x.dtype), h_new)
    grad_x, grad_weight_ih, grad_bias_ih = _input_side_grads(d_pre, x, weight_ih, bias_ih)
    grad_h, grad_weight_hh, grad_bias_hh = _hidden_side_grads(d_pre, h, weight_hh)
    return (grad_x, _cast(grad_h, h), grad_weight_ih, _cast(grad_weight_hh, weight_hh),
            grad_bias_ih, _cast(grad_bias_hh, bias_hh))


def lstm_cell_forward(
    x: Array, h: Array, c: Array, weight_ih: Array, weight_hh: Array,
    bias_ih: Array | None, bias_hh: Array | None,
) -> tuple[tuple[Array, Array], tuple[Any, ...]]:
    """One LSTM step (``torch.nn.LSTMCell``, ``torch.lstm_cell``), gate order i, f, g, o.

    ``[i, f, g, o] = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh`` split in four
    blocks of hidden_size columns; ``i, f, o`` go through a sigmoid, ``g`` through tanh;
    ``c' = f * c + i * g`` and ``h' = o * tanh(c')``.

    Parameters
    ----------
    x : ndarray of shape (N, input_size)
    h, c : ndarray of shape (N, hidden_size)
    weight_ih : ndarray of shape (4 * hidden_size, input_size)
    weight_hh : ndarray of shape (4 * hidden_size, hidden_size)
    bias_ih, bias_hh : ndarray of shape (4 * hidden_size,) or None

    Returns
    -------
    (h_new, c_new) : ndarrays of shape (N, hidden_size), dtype of ``x``
    cache : tuple
    """
    x, h, c, weight_ih, weight_hh = (np.asarray(a) for a in (x, h, c, weight_ih, weight_hh))
    bias_ih, bias_hh = _asarray(bias_ih), _asarray(bias_hh)
    _check("lstm_cell", x, [("h", h), ("c", c)], weight_ih, weight_hh, bias_ih, bias_hh, 4, False)
    h_new, c_new, saved = _lstm_step(
        _input_side(x, weight_ih, bias_ih), h, c, weight_hh, bias_hh
    )
    out = (h_new.astype(x.dtype, copy=False), c_new.astype(x.dtype, copy=False))
    return out, (x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, saved)


def lstm_cell_backward(
    douts: tuple[Array, Array], cache: tuple[Any, ...]
) -> tuple[Array | None, ...]:
    """Gradients of :func:`lstm_cell_forward`.

    Parameters
    ----------
    douts : (dh_new, dc_new), ndarrays of shape (N, hidden_size)
    cache : tuple

    Returns
    -------
    grad_x, grad_h, grad_c, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh
    """
    x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, saved = cache
    dh_new, dc_new = (np.asarray(d, dtype=x.dtype) for d in douts)
    d_pre, grad_c = _lstm_step_backward(dh_new, dc_new, saved)
    grad_x, grad_weight_ih, grad_bias_ih = _input_side_grads(d_pre, x, weight_ih, bias_ih)
    grad_h, grad_weight_hh, grad_bias_hh = _hidden_side_grads(d_pre, h, weight_hh)
    return (grad_x, _cast(grad_h, h), _cast(grad_c, c), grad_weight_ih,
            _cast(grad_weight_hh, weight_hh), grad_bias_ih, _cast(grad_bias_hh, bias_hh))


def gru_cell_forward(
    x: Array, h: Array, weight_ih: Array, weight_hh: Array,
    bias_ih: Array | None, bias_hh: Array | None,
) -> tuple[Array, tuple[Any, ...]]:
    """One GRU step (``torch.nn.GRUCell``, ``torch.gru_cell``), gate order r, z, n.

    With ``x_* = x @ W_i*.T + b_i*`` and ``h_* = h @ W_h*.T + b_h*`` (blocks of the stacked
    weights): ``r = sigmoid(x_r + h_r)``, ``z = sigmoid(x_z + h_z)``,
    ``n = tanh(x_n + r * h_n)`` and ``h' = (1 - z) * n + z * h``. The reset gate multiplies
    ``h_n`` after the matmul (and after its bias), as torch and cuDNN do, not ``h`` before it.

    Parameters
    ----------
    x : ndarray of shape (N, input_size)
    h : ndarray of shape (N, hidden_size)
    weight_ih : ndarray of shape (3 * hidden_size, input_size)
    weight_hh : ndarray of shape (3 * hidden_size, hidden_size)
    bias_ih, bias_hh : ndarray of shape (3 * hidden_size,) or None

    Returns
    -------
    h_new : ndarray of shape (N, hidden_size), dtype of ``x``
    cache : tuple
    """
    x, h, weight_ih, weight_hh = (np.asarray(a) for a in (x, h, weight_ih, weight_hh))
    bias_ih, bias_hh = _asarray(bias_ih), _asarray(bias_hh)
    _check("gru_cell", x, [("h", h)], weight_ih, weight_hh, bias_ih, bias_hh, 3, False)
    h_new, saved = _gru_step(_input_side(x, weight_ih, bias_ih), h, weight_hh, bias_hh)
    return h_new.astype(x.dtype, copy=False), (x, h, weight_ih, weight_hh, bias_ih, bias_hh, saved)


def gru_cell_backward(dh_new: Array, cache: tuple[Any, ...]) -> tuple[Array | None, ...]:
    """Gradients of :func:`gru_cell_forward`.

    Parameters
    ----------
    dh_new : ndarray of shape (N, hidden_size)
    cache : tuple

    Returns
    -------
    grad_x, grad_h, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh
    """
    x, h, weight_ih, weight_hh, bias_ih, bias_hh, saved = cache
    d_pre_x, d_pre_h, grad_h_direct = _gru_step_backward(np.asarray(dh_new, dtype=x.dtype), saved)
    grad_x, grad_weight_ih, grad_bias_ih = _input_side_grads(d_pre_x, x, weight_ih, bias_ih)
    grad_h, grad_weight_hh, grad_bias_hh = _hidden_side_grads(d_pre_h, h, weight_hh)
    return (grad_x, _cast(grad_h + grad_h_direct, h), grad_weight_ih,
            _cast(grad_weight_hh, weight_hh), grad_bias_ih, _cast(grad_bias_hh, bias_hh))
