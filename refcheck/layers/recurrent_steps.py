"""Shared pieces of the recurrent layers: shape checks, input- and hidden-side products and the
one-step functions (forward and backward) of the tanh RNN, the LSTM and the GRU.

See :mod:`refcheck.layers.recurrent` for the layouts and gate orders.
"""
from __future__ import annotations


import numpy as np

__all__: list[str] = []  # private helpers of recurrent_cells and recurrent_sequences

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
