"""Recurrent layers in numpy: tanh RNN, LSTM and GRU cells, and whole RNN / LSTM sequences.

Each layer is a pair of pure functions following the implementation contract:
``<layer>_forward(...) -> (out, cache)`` and ``<layer>_backward(dout, cache) -> gradients``.
Layouts and gate orders are torch's:

- weights are ``(G * hidden_size, input_size)`` and ``(G * hidden_size, hidden_size)`` with the
  gate blocks stacked along the first axis: LSTM ``i, f, g, o`` (G = 4), GRU ``r, z, n`` (G = 3),
  tanh RNN a single block (G = 1);
- cells take a batch ``x (N, input_size)``; sequences are sequence-first ``x (T, N, input_size)``
  (torch.nn.RNN / LSTM with ``batch_first=False``), one layer, one direction.

The cells and the sequences share the same step functions: a sequence is the cell applied T times,
and its backward walks the steps in reverse, carrying the hidden (and cell) state gradient from one
step to the previous one. The input-side products (``x @ weight_ih.T`` and its gradients) have no
recurrence, so they are done for all steps in one matrix product.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "gru_cell_backward",
    "gru_cell_forward",
    "lstm_backward",
    "lstm_cell_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "rnn_tanh_backward",
    "rnn_tanh_cell_backward",
    "rnn_tanh_cell_forward",
    "rnn_tanh_forward",
]

Array = np.ndarray


def _sigmoid(a: Array) -> Array:
    """Logistic function without overflow: exp is only taken of non-positive numbers."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


def _check(
    name: str, x: Array, hidden: list[tuple[str, Array | None]], weight_ih: Array,
    weight_hh: Array, bias_ih: Array | None, bias_hh: Array | None, gates: int, seq: bool,
) -> int:
    """Validate shapes against torch's rules; return hidden_size."""
    expected_ndim = 3 if seq else 2
    layout = "(T, N, input_size)" if seq else "(N, input_size)"
    if x.ndim != expected_ndim:
        raise ValueError(f"{name}: x has shape {x.shape}, expected {layout}")
    if weight_hh.ndim != 2 or weight_hh.shape[0] % gates or weight_hh.shape[0] == 0:
        raise ValueError(
            f"{name}: weight_hh {weight_hh.shape} should be ({gates} * hidden_size, hidden_size)"
        )
    hidden_size = weight_hh.shape[0] // gates
    if weight_hh.shape != (gates * hidden_size, hidden_size):
        raise ValueError(
            f"{name}: weight_hh {weight_hh.shape} should be ({gates} * hidden_size, hidden_size)"
        )
    if weight_ih.shape != (gates * hidden_size, x.shape[-1]):
        raise ValueError(
            f"{name}: weight_ih {weight_ih.shape} should be ({gates * hidden_size}, {x.shape[-1]})"
        )
    for bias_name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is not None and bias.shape != (gates * hidden_size,):
            raise ValueError(f"{name}: {bias_name} {bias.shape} should be ({gates * hidden_size},)")
    if seq and x.shape[0] == 0:
        raise ValueError(f"{name}: the sequence is empty (T = 0)")
    for state_name, state in hidden:
        if state is not None and state.shape != (x.shape[-2], hidden_size):
            raise ValueError(
                f"{name}: {state_name} {state.shape} should be ({x.shape[-2]}, {hidden_size})"
            )
    return hidden_size


def _asarray(array: Array | None, dtype: np.dtype | None = None) -> Array | None:
    return None if array is None else np.asarray(array, dtype=dtype)


def _input_side(x: Array, weight_ih: Array, bias_ih: Array | None) -> Array:
    """``x @ weight_ih.T + bias_ih`` for every row (and every step) at once."""
    out = np.matmul(x, weight_ih.T)
    return out if bias_ih is None else out + bias_ih


def _input_side_grads(
    d_pre: Array, x: Array, weight_ih: Array, bias_ih: Array | None
) -> tuple[Array, Array, Array | None]:
    """Gradients of :func:`_input_side` given the gradient of its result (..., G*H)."""
    rows = d_pre.reshape(-1, d_pre.shape[-1])
    grad_x = np.matmul(d_pre, weight_ih).astype(x.dtype, copy=False)
    grad_weight_ih = np.matmul(rows.T, x.reshape(-1, x.shape[-1])).astype(weight_ih.dtype)
    grad_bias_ih = None if bias_ih is None else rows.sum(axis=0).astype(bias_ih.dtype)
    return grad_x, grad_weight_ih, grad_bias_ih


def _hidden_side(h: Array, weight_hh: Array, bias_hh: Array | None) -> Array:
    out = np.matmul(h, weight_hh.T)
    return out if bias_hh is None else out + bias_hh


# ---------------------------------------------------------------------------------------------
# Step functions. ``pre_x`` is the input side of one step, ``x @ weight_ih.T + bias_ih``.
# A step's backward returns the gradient of the step's pre-activations and of its state input.


def _rnn_step(pre_x: Array, h: Array, weight_hh: Array, bias_hh: Array | None) -> Array:
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return np.tanh(pre_x + _hidden_side(h, weight_hh, bias_hh))


def _rnn_step_backward(dh_new: Array, h_new: Array) -> Array:
    """Gradient of the pre-activation (shared by the input and hidden sides)."""
    return dh_new * (1 - h_new * h_new)


def _lstm_step(
    pre_x: Array, h: Array, c: Array, weight_hh: Array, bias_hh: Array | None
) -> tuple[Array, Array, tuple[Array, ...]]:
    """One LSTM step; gates stacked as i, f, g, o (torch's order).

    ``i, f, o = sigmoid(.)``, ``g = tanh(.)``, ``c' = f * c + i * g``, ``h' = o * tanh(c')``.
    """
    pre = pre_x + _hidden_side(h, weight_hh, bias_hh)
    i, f, g, o = np.split(pre, 4, axis=-1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    return o * tanh_c, c_new, (i, f, g, o, c, tanh_c)


def _lstm_step_backward(
    dh_new: Array, dc_new: Array, saved: tuple[Array, ...]
) -> tuple[Array, Array]:
    """Gradients of the stacked pre-activation (N, 4H) and of the previous cell state."""
    i, f, g, o, c, tanh_c = saved
    d_o = dh_new * tanh_c
    # c' reaches the loss directly (dc_new) and through h' = o * tanh(c').
    dc = dc_new + dh_new * o * (1 - tanh_c * tanh_c)
    d_pre = np.concatenate(
        [dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g * g), d_o * o * (1 - o)],
        axis=-1,
    )
    return d_pre, dc * f


def _gru_step(
    pre_x: Array, h: Array, weight_hh: Array, bias_hh: Array | None
) -> tuple[Array, tuple[Array, ...]]:
    """One GRU step in torch's form; gates stacked as r, z, n.

    ``r = sigmoid(x_r + h_r)``, ``z = sigmoid(x_z + h_z)``, ``n = tanh(x_n + r * h_n)`` where
    ``h_n = W_hn h + b_hn`` (the reset gate scales the hidden product, after the matmul), and
    ``h' = (1 - z) * n + z * h``.
    """
    pre_h = _hidden_side(h, weight_hh, bias_hh)
    x_r, x_z, x_n = np.split(pre_x, 3, axis=-1)
    h_r, h_z, h_n = np.split(pre_h, 3, axis=-1)
    r = _sigmoid(x_r + h_r)
    z = _sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h, (r, z, n, h_n, h)


def _gru_step_backward(dh_new: Array, saved: tuple[Array, ...]) -> tuple[Array, Array, Array]:
    """Gradients of the input side (N, 3H), of the hidden side (N, 3H) and the direct path to h.

    The two sides differ only in the n block: the hidden side's is scaled by r.
    """
    r, z, n, h_n, h = saved
    d_n = dh_new * (1 - z) * (1 - n * n)
    d_z = dh_new * (h - n) * z * (1 - z)
    d_r = d_n * h_n * r * (1 - r)
    d_pre_x = np.concatenate([d_r, d_z, d_n], axis=-1)
    d_pre_h = np.concatenate([d_r, d_z, d_n * r], axis=-1)
    return d_pre_x, d_pre_h, dh_new * z


def _hidden_side_grads(
    d_pre_h: Array, h_prev: Array, weight_hh: Array
) -> tuple[Array, Array, Array]:
    """(grad of h_prev, grad of weight_hh, grad of bias_hh) from one step's hidden side."""
    return np.matmul(d_pre_h, weight_hh), np.matmul(d_pre_h.T, h_prev), d_pre_h.sum(axis=0)


def _cast(array: Array | None, like: Array | None) -> Array | None:
    if array is None or like is None:
        return None
    return array.astype(like.dtype, copy=False)


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
