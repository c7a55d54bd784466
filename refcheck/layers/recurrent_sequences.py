"""Whole sequences: ``rnn_tanh`` and ``lstm``, one layer, one direction, sequence-first, with
backpropagation through time (gradients of the initial states too).

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
    _hidden_side_grads,
    _input_side,
    _input_side_grads,
    _lstm_step,
    _lstm_step_backward,
    _rnn_step,
    _rnn_step_backward,
)

__all__ = ["lstm_backward", "lstm_forward", "rnn_tanh_backward", "rnn_tanh_forward"]

# ---------------------------------------------------------------------------------------------
# Sequences


def _initial_state(state: Array | None, batch: int, hidden_size: int, dtype: np.dtype) -> Array:
    return np.zeros((batch, hidden_size), dtype=dtype) if state is None else state


def rnn_tanh_forward(
    x: Array, h0: Array | None, weight_ih: Array, weight_hh: Array,
    bias_ih: Array | None, bias_hh: Array | None,
) -> tuple[tuple[Array, Array], tuple[Any, ...]]:
    """A one-layer, one-direction tanh RNN over a sequence (``torch.nn.RNN``, seq-first).

    ``h_t = tanh(x_t @ weight_ih.T + bias_ih + h_{t-1} @ weight_hh.T + bias_hh)`` for
    ``t = 0 .. T-1``, starting from ``h_{-1} = h0``.

    Parameters
    ----------
    x : ndarray of shape (T, N, input_size), T >= 1
    h0 : ndarray of shape (N, hidden_size) or None (zeros, and then no gradient)
    weight_ih : ndarray of shape (hidden_size, input_size)
    weight_hh : ndarray of shape (hidden_size, hidden_size)
    bias_ih, bias_hh : ndarray of shape (hidden_size,) or None

    Returns
    -------
    (output, h_n) : output of shape (T, N, hidden_size) holds every ``h_t``; h_n (N, hidden_size)
        is the last one (torch.nn.RNN's ``h_n`` without the layer axis).
    cache : tuple
    """
    x, weight_ih, weight_hh = (np.asarray(a) for a in (x, weight_ih, weight_hh))
    h0, bias_ih, bias_hh = _asarray(h0), _asarray(bias_ih), _asarray(bias_hh)
    hidden_size = _check("rnn_tanh", x, [("h0", h0)], weight_ih, weight_hh, bias_ih, bias_hh,
                         1, True)
    h = _initial_state(h0, x.shape[1], hidden_size, x.dtype)
    pre_x = _input_side(x, weight_ih, bias_ih)
    output = np.empty((x.shape[0], x.shape[1], hidden_size), dtype=x.dtype)
    for t in range(x.shape[0]):
        h = output[t] = _rnn_step(pre_x[t], h, weight_hh, bias_hh)
    h_n = output[-1].copy()  # a fresh array, not a view into ``output``
    return (output, h_n), (x, h0, weight_ih, weight_hh, bias_ih, bias_hh, output)


def rnn_tanh_backward(
    douts: tuple[Array, Array], cache: tuple[Any, ...]
) -> tuple[Array | None, ...]:
    """Backpropagation through time for :func:`rnn_tanh_forward`.

    Parameters
    ----------
    douts : (d_output, d_h_n) of shapes (T, N, hidden_size) and (N, hidden_size)
    cache : tuple

    Returns
    -------
    grad_x, grad_h0, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh
        grad_h0 is None when h0 was None; a bias gradient is None when that bias was None.
    """
    x, h0, weight_ih, weight_hh, bias_ih, bias_hh, output = cache
    d_output, d_h_n = (np.asarray(d, dtype=x.dtype) for d in douts)
    steps, batch, hidden_size = output.shape
    h_initial = _initial_state(h0, batch, hidden_size, x.dtype)
    d_pre = np.empty_like(output)
    grad_weight_hh = np.zeros_like(weight_hh, dtype=x.dtype)
    grad_bias_hh = np.zeros(hidden_size, dtype=x.dtype)
    dh = d_h_n  # gradient reaching h_{T-1} from after the last step
    for t in reversed(range(steps)):
        h_prev = output[t - 1] if t > 0 else h_initial
        d_pre[t] = _rnn_step_backward(dh + d_output[t], output[t])
        dh, step_grad_weight, step_grad_bias = _hidden_side_grads(d_pre[t], h_prev, weight_hh)
        grad_weight_hh += step_grad_weight
        grad_bias_hh += step_grad_bias
    grad_x, grad_weight_ih, grad_bias_ih = _input_side_grads(d_pre, x, weight_ih, bias_ih)
    return (grad_x, _cast(dh, h0), grad_weight_ih, _cast(grad_weight_hh, weight_hh),
            grad_bias_ih, _cast(grad_bias_hh, bias_hh))


def lstm_forward(
    x: Array, h0: Array | None, c0: Array | None, weight_ih: Array, weight_hh: Array,
    bias_ih: Array | None, bias_hh: Array | None,
) -> tuple[tuple[Array, Array, Array], tuple[Any, ...]]:
    """A one-layer, one-direction LSTM over a sequence (``torch.nn.LSTM``, seq-first).

    Applies the step of :func:`lstm_cell_forward` for ``t = 0 .. T-1`` from ``(h0, c0)``.

    Parameters
    ----------
    x : ndarray of shape (T, N, input_size), T >= 1
    h0, c0 : ndarray of shape (N, hidden_size) or None (zeros, and then no gradient)
    weight_ih : ndarray of shape (4 * hidden_size, input_size), gate blocks i, f, g, o
    weight_hh : ndarray of shape (4 * hidden_size, hidden_size)
    bias_ih, bias_hh : ndarray of shape (4 * hidden_size,) or None

    Returns
    -------
    (output, h_n, c_n) : output (T, N, hidden_size) holds every ``h_t``; h_n and c_n
        (N, hidden_size) are the final states (torch's without the layer axis).
    cache : tuple
    """
    x, weight_ih, weight_hh = (np.asarray(a) for a in (x, weight_ih, weight_hh))
    h0, c0 = _asarray(h0), _asarray(c0)
    bias_ih, bias_hh = _asarray(bias_ih), _asarray(bias_hh)
    hidden_size = _check("lstm", x, [("h0", h0), ("c0", c0)], weight_ih, weight_hh, bias_ih,
                         bias_hh, 4, True)
    h = _initial_state(h0, x.shape[1], hidden_size, x.dtype)
    c = _initial_state(c0, x.shape[1], hidden_size, x.dtype)
    pre_x = _input_side(x, weight_ih, bias_ih)
    output = np.empty((x.shape[0], x.shape[1], hidden_size), dtype=x.dtype)
    steps_saved = []
    for t in range(x.shape[0]):
        h, c, saved = _lstm_step(pre_x[t], h, c, weight_hh, bias_hh)
        output[t] = h
        steps_saved.append(saved)
    outs = (output, h.astype(x.dtype, copy=True), c.astype(x.dtype, copy=True))
    return outs, (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, output, steps_saved)


def lstm_backward(
    douts: tuple[Array, Array, Array], cache: tuple[Any, ...]
) -> tuple[Array | None, ...]:
    """Backpropagation through time for :func:`lstm_forward`.

    Parameters
    ----------
    douts : (d_output, d_h_n, d_c_n) of shapes (T, N, hidden_size), (N, hidden_size) and
        (N, hidden_size)
    cache : tuple

    Returns
    -------
    grad_x, grad_h0, grad_c0, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh
        grad_h0 / grad_c0 are None when h0 / c0 were None; a bias gradient is None when that
        bias was None.
    """
    x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, output, steps_saved = cache
    d_output, dh, dc = (np.asarray(d, dtype=x.dtype) for d in douts)
    steps, batch, hidden_size = output.shape
    h_initial = _initial_state(h0, batch, hidden_size, x.dtype)
    d_pre = np.empty((steps, batch, 4 * hidden_size), dtype=x.dtype)
    grad_weight_hh = np.zeros_like(weight_hh, dtype=x.dtype)
    grad_bias_hh = np.zeros(4 * hidden_size, dtype=x.dtype)
    for t in reversed(range(steps)):
        h_prev = output[t - 1] if t > 0 else h_initial
        # h_t reaches the loss through output[t] and through the next step (dh).
        d_pre[t], dc = _lstm_step_backward(dh + d_output[t], dc, steps_saved[t])
        dh, step_grad_weight, step_grad_bias = _hidden_side_grads(d_pre[t], h_prev, weight_hh)
        grad_weight_hh += step_grad_weight
        grad_bias_hh += step_grad_bias
    grad_x, grad_weight_ih, grad_bias_ih = _input_side_grads(d_pre, x, weight_ih, bias_ih)
    return (grad_x, _cast(dh, h0), _cast(dc, c0), grad_weight_ih,
            _cast(grad_weight_hh, weight_hh), grad_bias_ih, _cast(grad_bias_hh, bias_hh))
