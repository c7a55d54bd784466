"""Tests of refcheck.layers.recurrent: torch autograd (cells and nn.RNN / nn.LSTM), loop twins,
and planted mistakes that the torch comparison must catch."""
from __future__ import annotations

from functools import partial

import helpers
import numpy as np
import pytest
import torch
from twins_recurrent import lstm_loops, rnn_tanh_loops

from refcheck.layers.recurrent import (
    gru_cell_backward,
    gru_cell_forward,
    lstm_backward,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_forward,
    rnn_tanh_backward,
    rnn_tanh_cell_backward,
    rnn_tanh_cell_forward,
    rnn_tanh_forward,
)

DTYPES = [np.float32, np.float64]
TOLERANCES = {np.float32: (1e-5, 2e-5), np.float64: (1e-10, 1e-12)}
assert_matches = partial(helpers.assert_matches, tolerances=TOLERANCES)


def torch_run(function, arrays, upstream):
    """Outputs and gradients of ``function`` by torch autograd in float64.

    ``arrays`` may hold None (an absent tensor, whose gradient is None); ``upstream`` holds one
    random gradient per output.
    """
    leaves = [None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)
              for a in arrays]
    outs = function(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    torch.autograd.backward(outs, [torch.tensor(u, dtype=torch.float64) for u in upstream])
    grads = tuple(None if leaf is None else leaf.grad.numpy() for leaf in leaves)
    return tuple(o.detach().numpy() for o in outs), grads


def check_all(actual_outs, actual_grads, expected_outs, expected_grads, dtype, names, case_id):
    for k, (actual, expected) in enumerate(zip(actual_outs, expected_outs)):
        assert_matches(actual, expected, dtype, f"output {k} [{case_id}]")
    assert len(actual_grads) == len(names)
    for name, actual, expected in zip(names, actual_grads, expected_grads):
        if expected is None:
            assert actual is None, f"{name} should be None [{case_id}]"
        else:
            assert_matches(actual, expected, dtype, f"{name} [{case_id}]")


# ------------------------------------------------------------------------------------------ cells

CELL_GATES = {"rnn_tanh_cell": 1, "lstm_cell": 4, "gru_cell": 3}
CELL_LAYERS = {
    "rnn_tanh_cell": (rnn_tanh_cell_forward, rnn_tanh_cell_backward),
    "lstm_cell": (lstm_cell_forward, lstm_cell_backward),
    "gru_cell": (gru_cell_forward, gru_cell_backward),
}
# (batch, input_size, hidden_size, bias_ih, bias_hh)
CELL_CASES = [(3, 4, 5, True, True), (1, 2, 3, False, False), (4, 3, 2, True, False),
              (2, 5, 4, False, True)]


def torch_cell(name):
    if name == "lstm_cell":
        return lambda x, h, c, *w: torch.lstm_cell(x, (h, c), *w)
    return {"rnn_tanh_cell": torch.rnn_tanh_cell, "gru_cell": torch.gru_cell}[name]


def cell_inputs(name, batch, input_size, hidden, bias_ih, bias_hh, dtype, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    gates = CELL_GATES[name]

    def draw(*shape):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    states = [draw(batch, hidden) for _ in range(2 if name == "lstm_cell" else 1)]
    arrays = [draw(batch, input_size), *states, draw(gates * hidden, input_size),
              draw(gates * hidden, hidden), draw(gates * hidden) if bias_ih else None,
              draw(gates * hidden) if bias_hh else None]
    upstream = [draw(batch, hidden) for _ in states]
    return arrays, upstream


def run_cell(name, arrays, upstream, layers=None):
    forward, backward = layers or CELL_LAYERS[name]
    out, cache = forward(*arrays)
    if name == "lstm_cell":
        return out, backward(tuple(upstream), cache)
    return (out,), backward(upstream[0], cache)


def cell_grad_names(name):
    states = ["grad_h", "grad_c"] if name == "lstm_cell" else ["grad_h"]
    return ["grad_x", *states, "grad_weight_ih", "grad_weight_hh", "grad_bias_ih", "grad_bias_hh"]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CELL_CASES, ids=lambda c: "n{}-i{}-h{}-bih{:d}-bhh{:d}".format(*c))
@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_cell_matches_torch(name, case, dtype) -> None:
    arrays, upstream = cell_inputs(name, *case, dtype, seed=sum(case))
    outs, grads = run_cell(name, arrays, upstream)
    expected_outs, expected_grads = torch_run(torch_cell(name), arrays, upstream)
    check_all(outs, grads, expected_outs, expected_grads, dtype, cell_grad_names(name), name)


@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_cell_matches_torch_nn_module(name) -> None:
    """Weights copied into torch.nn.RNNCell / LSTMCell / GRUCell: same layout and gate order."""
    module_class = {"rnn_tanh_cell": torch.nn.RNNCell, "lstm_cell": torch.nn.LSTMCell,
                    "gru_cell": torch.nn.GRUCell}[name]
    arrays, upstream = cell_inputs(name, 3, 4, 5, True, True, np.float64, seed=7)
    module = module_class(4, 5).double()
    with torch.no_grad():
        for param, array in zip((module.weight_ih, module.weight_hh, module.bias_ih,
                                 module.bias_hh), arrays[-4:]):
            param.copy_(torch.tensor(array))
    x, *states = (torch.tensor(a) for a in arrays[:-4])
    expected = module(x, tuple(states) if name == "lstm_cell" else states[0])
    expected = expected if isinstance(expected, tuple) else (expected,)
    outs, _ = run_cell(name, arrays, upstream)
    for actual, reference in zip(outs, expected):
        assert_matches(actual, reference.detach().numpy(), np.float64, name)


@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_cell_saturated_gates_stay_finite(name) -> None:
    """Pre-activations far beyond +-700 saturate sigmoid/tanh without overflow or NaN."""
    arrays, upstream = cell_inputs(name, 2, 3, 4, True, True, np.float64, seed=3, scale=400.0)
    outs, grads = run_cell(name, arrays, upstream)
    expected_outs, expected_grads = torch_run(torch_cell(name), arrays, upstream)
    for actual, expected in zip((*outs, *grads), (*expected_outs, *expected_grads)):
        if expected is not None:
            np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


# -------------------------------------------------------------------------------------- sequences

# (T, batch, input_size, hidden_size, bias_ih, bias_hh, with_h0, with_c0)
SEQ_CASES = [
    (1, 2, 3, 4, True, True, True, True),
    (5, 3, 4, 3, True, True, True, True),
    (4, 1, 2, 5, False, False, False, False),
    (6, 2, 3, 2, True, False, True, False),
    (3, 4, 2, 3, False, True, False, True),
]
SEQ_IDS = ["T{}-n{}-i{}-h{}-bih{:d}-bhh{:d}-h0{:d}-c0{:d}".format(*c) for c in SEQ_CASES]
RNN_GRADS = ["grad_x", "grad_h0", "grad_weight_ih", "grad_weight_hh", "grad_bias_ih",
             "grad_bias_hh"]
LSTM_GRADS = RNN_GRADS[:2] + ["grad_c0"] + RNN_GRADS[2:]


def seq_inputs(lstm, steps, batch, input_size, hidden, bias_ih, bias_hh, with_h0, with_c0,
               dtype, seed):
    rng = np.random.default_rng(seed)
    gates = 4 if lstm else 1

    def draw(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = draw(steps, batch, input_size)
    h0 = draw(batch, hidden) if with_h0 else None
    c0 = draw(batch, hidden) if with_c0 else None
    weights = [draw(gates * hidden, input_size), draw(gates * hidden, hidden),
               draw(gates * hidden) if bias_ih else None, draw(gates * hidden) if bias_hh else None]
    arrays = [x, h0, c0, *weights] if lstm else [x, h0, *weights]
    upstream = [draw(steps, batch, hidden)] + [draw(batch, hidden) for _ in range(2 if lstm else 1)]
    return arrays, upstream


def torch_sequence_by_cells(lstm: bool):
    """Repeated torch cell calls; a missing initial state is zeros."""
    def run(x, h, *rest):
        if lstm:
            c, *weights = rest
            c = torch.zeros(x.shape[1], weights[1].shape[1], dtype=x.dtype) if c is None else c
        else:
            weights = rest
        h = torch.zeros(x.shape[1], weights[1].shape[1], dtype=x.dtype) if h is None else h
        outputs = []
        for t in range(x.shape[0]):
            if lstm:
                h, c = torch.lstm_cell(x[t], (h, c), *weights)
            else:
                h = torch.rnn_tanh_cell(x[t], h, *weights)
            outputs.append(h)
        return (torch.stack(outputs), h, c) if lstm else (torch.stack(outputs), h)
    return run


def run_sequence(lstm, arrays, upstream, layers=None):
    forward, backward = layers or ((lstm_forward, lstm_backward) if lstm
                                   else (rnn_tanh_forward, rnn_tanh_backward))
    outs, cache = forward(*arrays)
    return outs, backward(tuple(upstream), cache)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", SEQ_CASES, ids=SEQ_IDS)
@pytest.mark.parametrize("lstm", [False, True], ids=["rnn_tanh", "lstm"])
def test_sequence_matches_torch_cells(lstm, case, dtype) -> None:
    arrays, upstream = seq_inputs(lstm, *case, dtype, seed=sum(case))
    outs, grads = run_sequence(lstm, arrays, upstream)
    expected_outs, expected_grads = torch_run(torch_sequence_by_cells(lstm), arrays, upstream)
    check_all(outs, grads, expected_outs, expected_grads, dtype,
              LSTM_GRADS if lstm else RNN_GRADS, f"{'lstm' if lstm else 'rnn_tanh'}-{case}")


@pytest.mark.parametrize("case", [c for c in SEQ_CASES if c[4] == c[5] and c[6] == c[7]],
                         ids=lambda c: "T{}-n{}-i{}-h{}".format(*c))
@pytest.mark.parametrize("lstm", [False, True], ids=["rnn_tanh", "lstm"])
def test_sequence_matches_torch_nn_module(lstm, case) -> None:
    """Weights copied into a one-layer torch.nn.RNN / torch.nn.LSTM (seq-first)."""
    _, _, input_size, hidden, with_bias, _, _, _ = case
    arrays, upstream = seq_inputs(lstm, *case, np.float64, seed=11)
    module_class = torch.nn.LSTM if lstm else torch.nn.RNN
    module = module_class(input_size, hidden, num_layers=1, bias=with_bias).double()
    params = [module.weight_ih_l0, module.weight_hh_l0]
    if with_bias:
        params += [module.bias_ih_l0, module.bias_hh_l0]
    with torch.no_grad():
        for param, array in zip(params, arrays[-4:]):
            param.copy_(torch.tensor(array))
    x = torch.tensor(arrays[0], requires_grad=True)
    states = [torch.tensor(a, requires_grad=True)[None] for a in arrays[1:(3 if lstm else 2)]
              if a is not None]
    output, hidden_state = module(x, (tuple(states) if lstm else states[0]) if states else None)
    finals = hidden_state if lstm else (hidden_state,)
    torch.autograd.backward([output, *(s[0] for s in finals)],
                            [torch.tensor(u) for u in upstream])
    outs, grads = run_sequence(lstm, arrays, upstream)
    expected_outs = [output, *(s[0] for s in finals)]
    for actual, reference in zip(outs, expected_outs):
        assert_matches(actual, reference.detach().numpy(), np.float64, "output")
    assert_matches(grads[0], x.grad.numpy(), np.float64, "grad_x")
    expected_param_grads = [p.grad.numpy() for p in params]
    for actual, reference in zip([g for g in grads[-4:] if g is not None], expected_param_grads):
        assert_matches(actual, reference, np.float64, "parameter gradient")


@pytest.mark.parametrize("case", SEQ_CASES, ids=SEQ_IDS)
@pytest.mark.parametrize("lstm", [False, True], ids=["rnn_tanh", "lstm"])
def test_sequence_matches_loop_twin(lstm, case) -> None:
    arrays, upstream = seq_inputs(lstm, *case, np.float64, seed=sum(case) + 1)
    outs, grads = run_sequence(lstm, arrays, upstream)
    twin = lstm_loops if lstm else rnn_tanh_loops
    twin_outs, twin_grads = twin(*arrays, *upstream)
    check_all(outs, grads, twin_outs, twin_grads, np.float64,
              LSTM_GRADS if lstm else RNN_GRADS, f"twin-{case}")


@pytest.mark.parametrize("lstm", [False, True], ids=["rnn_tanh", "lstm"])
def test_loop_twin_matches_torch(lstm) -> None:
    arrays, upstream = seq_inputs(lstm, *SEQ_CASES[1], np.float64, seed=5)
    twin = lstm_loops if lstm else rnn_tanh_loops
    outs, grads = twin(*arrays, *upstream)
    expected_outs, expected_grads = torch_run(torch_sequence_by_cells(lstm), arrays, upstream)
    check_all(outs, grads, expected_outs, expected_grads, np.float64,
              LSTM_GRADS if lstm else RNN_GRADS, "twin")


@pytest.mark.parametrize("lstm", [False, True], ids=["rnn_tanh", "lstm"])
def test_sequence_inputs_not_mutated_and_results_fresh(lstm) -> None:
    arrays, upstream = seq_inputs(lstm, *SEQ_CASES[1], np.float64, seed=9)
    for array in (*arrays, *upstream):
        array.flags.writeable = False  # an in-place write raises
    outs, grads = run_sequence(lstm, arrays, upstream)
    for result in (*outs, *grads):
        assert not any(np.shares_memory(result, a) for a in (*arrays, *upstream))
    assert not np.shares_memory(outs[0], outs[1])


def test_shape_errors() -> None:
    x = np.zeros((2, 3))
    h = np.zeros((2, 4))
    with pytest.raises(ValueError, match="weight_ih"):
        lstm_cell_forward(x, h, h, np.zeros((16, 2)), np.zeros((16, 4)), None, None)
    with pytest.raises(ValueError, match="weight_hh"):
        gru_cell_forward(x, h, np.zeros((12, 3)), np.zeros((10, 4)), None, None)
    with pytest.raises(ValueError, match="T = 0"):
        rnn_tanh_forward(np.zeros((0, 2, 3)), None, np.zeros((4, 3)), np.zeros((4, 4)), None,
                         None)
    with pytest.raises(ValueError, match="h0"):
        rnn_tanh_forward(np.zeros((1, 2, 3)), np.zeros((3, 4)), np.zeros((4, 3)),
                         np.zeros((4, 4)), None, None)


# ------------------------------------------------------------------------------ planted mistakes


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def lstm_cell_forward_wrong_gate_order(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """Reads the blocks as i, f, o, g (a common convention elsewhere) instead of torch's i, f, g, o."""
    pre = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i, f, o, g = np.split(pre, 4, axis=-1)
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return (_sigmoid(o) * np.tanh(c_new), c_new), None


def gru_cell_forward_reset_before_matmul(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """The original GRU paper's form: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)."""
    hidden = h.shape[1]
    x_r, x_z, x_n = np.split(x @ weight_ih.T + bias_ih, 3, axis=-1)
    w_hr, w_hz, w_hn = np.split(weight_hh, 3, axis=0)
    b_hr, b_hz, b_hn = np.split(bias_hh, 3)
    r = _sigmoid(x_r + h @ w_hr.T + b_hr)
    z = _sigmoid(x_z + h @ w_hz.T + b_hz)
    n = np.tanh(x_n + (r * h) @ w_hn.T + b_hn)
    assert n.shape[1] == hidden
    return (1 - z) * n + z * h, None


def rnn_tanh_backward_no_recurrent_gradient(douts, cache):
    """Each step sees only its own output's gradient: dh is never passed back through time."""
    x, h0, weight_ih, weight_hh, _, _, output = cache
    d_output, d_h_n = douts
    d_output = d_output.copy()
    d_output[-1] += d_h_n
    d_pre = d_output * (1 - output ** 2)
    h_prev = np.concatenate([h0[None], output[:-1]])
    rows = d_pre.reshape(-1, d_pre.shape[-1])
    return (d_pre @ weight_ih, d_pre[0] @ weight_hh, rows.T @ x.reshape(-1, x.shape[-1]),
            rows.T @ h_prev.reshape(-1, h_prev.shape[-1]), rows.sum(0), rows.sum(0))


def _first_mismatch(outs, grads, expected_outs, expected_grads):
    """True when some output or gradient differs from torch beyond float64 tolerance."""
    pairs = list(zip(outs, expected_outs)) + list(zip(grads or (), expected_grads))
    return any(not np.allclose(a, e, rtol=1e-10, atol=1e-12) for a, e in pairs
               if e is not None and a is not None)


def test_planted_lstm_gate_order_is_caught() -> None:
    arrays, upstream = cell_inputs("lstm_cell", 3, 4, 5, True, True, np.float64, seed=1)
    expected_outs, _ = torch_run(torch_cell("lstm_cell"), arrays, upstream)
    wrong, _ = lstm_cell_forward_wrong_gate_order(*arrays)
    right, _ = lstm_cell_forward(*arrays)
    assert not _first_mismatch(right, None, expected_outs, ())
    assert _first_mismatch(wrong, None, expected_outs, ())


def test_planted_gru_reset_before_matmul_is_caught() -> None:
    arrays, upstream = cell_inputs("gru_cell", 3, 4, 5, True, True, np.float64, seed=2)
    expected_outs, _ = torch_run(torch_cell("gru_cell"), arrays, upstream)
    wrong, _ = gru_cell_forward_reset_before_matmul(*arrays)
    right, _ = gru_cell_forward(*arrays)
    assert not _first_mismatch((right,), None, expected_outs, ())
    assert _first_mismatch((wrong,), None, expected_outs, ())


def test_planted_missing_recurrent_gradient_is_caught() -> None:
    arrays, upstream = seq_inputs(False, 4, 2, 3, 3, True, True, True, True, np.float64, seed=4)
    expected_outs, expected_grads = torch_run(torch_sequence_by_cells(False), arrays, upstream)
    outs, grads = run_sequence(False, arrays, upstream)
    assert not _first_mismatch(outs, grads, expected_outs, expected_grads)
    outs, wrong_grads = run_sequence(
        False, arrays, upstream, (rnn_tanh_forward, rnn_tanh_backward_no_recurrent_gradient)
    )
    assert _first_mismatch(outs, wrong_grads, expected_outs, expected_grads)
    # With one step there is nothing to pass back, so the wrong variant agrees: T > 1 matters.
    arrays, upstream = seq_inputs(False, 1, 2, 3, 3, True, True, True, True, np.float64, seed=4)
    expected_outs, expected_grads = torch_run(torch_sequence_by_cells(False), arrays, upstream)
    outs, wrong_grads = run_sequence(
        False, arrays, upstream, (rnn_tanh_forward, rnn_tanh_backward_no_recurrent_gradient)
    )
    assert not _first_mismatch(outs, wrong_grads, expected_outs, expected_grads)
