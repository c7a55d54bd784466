"""Skips, errors and failures name the user's function or class (never refcheck's internal names
such as ``linear_forward`` for code that has no such function, or "CS231n svm_loss" for a function
the user named otherwise). Small modules written here are checked through the public API."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from refcheck.execution.sweep import check, plan_sweep

SPACES = """
[linear]
[linear.grid]
features = [[3, 4]]
bias = [true, false]
batch_shape = [[4]]
dtype = ["float64"]

[lstm_cell]
[lstm_cell.grid]
batch = [3]
input_features = [2]
hidden_size = [2]
bias = [true]
dtype = ["float64"]

[multi_margin_loss]
[multi_margin_loss.grid]
class_weight = [false, true]
input_shape = [[4, 5]]
dtype = ["float64"]

[nll_loss]
[nll_loss.grid]
class_weight = [false, true]
input_shape = [[4, 5]]
dtype = ["float64"]

[cross_entropy]
[cross_entropy.grid]
class_weight = [false, true]
input_shape = [[4, 5]]
dtype = ["float64"]

[relu]
[relu.grid]
input_shape = [[3, 4], [5]]
dtype = ["float64"]
"""

CONTRACT = '''
import numpy as np

def linear_forward(x, weight):              # no bias argument at all
    return x @ weight.T, (x, weight)

def linear_backward(dout, cache):
    x, weight = cache
    return dout @ weight, dout.T @ x, None

def lstm_cell_forward(input, hx, cx, weight_ih, weight_hh, bias_ih, bias_hh):
    return np.zeros_like(hx), None           # returns h only, not (h, c)

def lstm_cell_backward(dout, cache):
    raise NotImplementedError
'''

CS231N = '''
import numpy as np

def svm_loss(x, y):
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(n), y] -= dx.sum(axis=1)
    return margins.sum() / n, dx / n
'''

OBJECTS = '''
import numpy as np

class NLLLoss:
    def __init__(self, reduction="mean"):   # no weight keyword
        self.reduction = reduction

    def forward(self, input, target):
        self.input, self.target = input, target
        picked = -input[np.arange(len(target)), target]
        return picked.mean() if self.reduction == "mean" else picked.sum()

    def backward(self):
        grad = np.zeros_like(self.input)
        grad[np.arange(len(self.target)), self.target] = -1.0
        return grad / len(self.target) if self.reduction == "mean" else grad
'''


TEXTBOOK_LOSS = '''
import numpy as np

class SoftmaxWithLoss:                          # a textbook loss layer: no class weights
    def forward(self, x, t):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.p, self.t = e / e.sum(axis=1, keepdims=True), t
        return -np.mean(np.log(self.p[np.arange(len(t)), t]))

    def backward(self, dout=1):
        dx = self.p.copy()
        dx[np.arange(len(self.t)), self.t] -= 1
        return dx * dout / len(self.t)
'''

WEIGHTED_LOSS = '''
import numpy as np

class CrossEntropyLoss:                         # torch.nn's keyword for class weights
    def __init__(self, weight=None):
        self.weight = weight

    def forward(self, x, t):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.p, self.t = e / e.sum(axis=1, keepdims=True), t
        self.wt = (np.ones(x.shape[1]) if self.weight is None else self.weight)[t]
        return -np.sum(self.wt * np.log(self.p[np.arange(len(t)), t])) / self.wt.sum()

    def backward(self, dout=1):
        dx = self.p.copy()
        dx[np.arange(len(self.t)), self.t] -= 1
        return dx * self.wt[:, None] * dout / self.wt.sum()
'''


def _run(tmp_path: Path, name: str, source: str, layers: list[str]) -> pd.DataFrame:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    (folder / "space.toml").write_text(SPACES, encoding="utf-8")
    module = tmp_path / f"{name}.py"
    module.write_text(textwrap.dedent(source), encoding="utf-8")
    return check(impl=str(module), layers=layers, cases=folder, workers=0, selfcheck=False,
                 allow_frameworks=True)  # variants built on refcheck's own layers


def _not_supported(tmp_path: Path, name: str, layer: str) -> str:
    """The plan's 'not supported' line of a layer of the module _run wrote."""
    return plan_sweep(str(tmp_path / f"{name}.py"), [layer], tmp_path / "cases").unsupported.get(layer, "")


def test_a_missing_optional_tensor_names_the_users_function(tmp_path):
    # The cases that give the tensor are left out when planning, named in the 'not supported' line.
    frame = _run(tmp_path, "my_dense", CONTRACT, ["linear"])
    assert len(frame) and set(frame["status"]) == {"passed"}
    assert "my_dense.linear_forward takes no bias tensor" in _not_supported(tmp_path, "my_dense", "linear")


def test_a_multi_output_layer_returning_one_array_names_the_users_function(tmp_path):
    frame = _run(tmp_path, "my_cells", CONTRACT, ["lstm_cell"])
    assert set(frame["status"]) == {"error"}
    expected = "my_cells.lstm_cell_forward must return ((h_1, c_1), cache); its first item is ndarray"
    assert set(frame["reason"]) == {expected}


def test_cs231n_limits_name_the_users_function_not_refchecks(tmp_path):
    frame = _run(tmp_path, "assignment", CS231N, ["multi_margin_loss"])
    weighted = frame[frame["case"].str.contains("-w5-", regex=False)]
    reasons = set(frame.loc[frame["status"] == "skipped", "reason"])
    assert reasons == {"unsupported: svm_loss has no class weights"}, reasons
    assert set(weighted["status"]) == {"skipped"} and len(weighted) == 2
    assert set(frame.loc[frame["status"] != "skipped", "status"]) == {"passed"}
    assert not frame["reason"].fillna("").str.contains("CS231n").any()


def test_an_object_loss_without_a_weight_keyword_is_named(tmp_path):
    frame = _run(tmp_path, "my_losses", OBJECTS, ["nll_loss"])
    assert len(frame) and set(frame["status"]) == {"passed"}
    assert "NLLLoss takes no weight keyword" in _not_supported(tmp_path, "my_losses", "nll_loss")


def test_a_loss_class_gets_the_class_weights_by_keyword_or_skips_the_weighted_cases(tmp_path):
    """Class weights are never dropped silently: a loss class without a ``weight`` keyword cannot
    run a weighted case (left out when planning, naming the class); one with it gets them and passes."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    textbook = _run(tmp_path / "a", "textbook", TEXTBOOK_LOSS, ["cross_entropy"])
    assert not textbook["case"].str.contains("-w5-", regex=False).any()
    assert len(textbook) and set(textbook["status"]) == {"passed"}
    assert "SoftmaxWithLoss takes no weight keyword" in _not_supported(tmp_path / "a", "textbook", "cross_entropy")
    with_keyword = _run(tmp_path / "b", "weighted", WEIGHTED_LOSS, ["cross_entropy"])
    assert with_keyword["case"].str.contains("-w5-", regex=False).any()
    assert set(with_keyword["status"]) == {"passed"}, with_keyword[["case", "reason"]]


LISTS = '''
import numpy as np

def relu_forward(x):
    return np.maximum(x, 0).tolist(), x      # the output as a nested list

def relu_backward(dout, cache):
    return (dout * (cache > 0)).tolist()     # the one gradient as a nested list

def linear_forward(x, weight, bias):
    return x @ weight.T + (0 if bias is None else bias), (x, weight, bias)

def linear_backward(dout, cache):
    x, weight, bias = cache
    flat_x, flat_dout = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])
    grad_bias = None if bias is None else flat_dout.sum(axis=0)
    return [dout @ weight, flat_dout.T @ flat_x, grad_bias]   # several gradients as a list: fine
'''


def test_a_gradient_returned_as_a_list_is_named_as_such_and_a_list_of_gradients_works(tmp_path):
    frame = _run(tmp_path, "lists", LISTS, ["relu", "linear"])
    relu = frame[frame["layer"] == "relu"].set_index("tensor")
    assert set(relu.loc["output", "reason"]) == {"output is a list, expected a numpy array"}
    assert set(relu.loc["grad_input", "reason"]) == {"grad_input is a list, expected a numpy array"}
    assert set(frame.loc[frame["layer"] == "linear", "status"]) == {"passed"}


def test_a_cell_backward_taking_one_argument_per_upstream_gradient_is_called_so(tmp_path):
    # lstm_cell_backward(dh, dc, cache): every case was "missing 1 required positional argument".
    module = tmp_path / "cells.py"
    module.write_text("from refcheck.layers import lstm_cell_backward as _backward, lstm_cell_forward\n\n\n"
                      "def lstm_cell_backward(dh, dc, cache):\n    return _backward((dh, dc), cache)\n")
    frame = check(impl=str(module), layers=["lstm_cell"], quick=True, workers=0, selfcheck=False,
                  allow_frameworks=True)  # (built on refcheck's own cell)
    assert len(frame) and set(frame["status"]) == {"passed"}
