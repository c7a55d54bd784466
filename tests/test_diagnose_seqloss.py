"""Planted mistakes in the recurrent, attention and weighted loss layers: each fails only where the
mistake changes the result, and every failing row names it.

The modules in tests/impls_diagnose/ are written from scratch with the mistake (or wrap a built-in
layer and add it); they run through the public API on small case spaces written here.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from refcheck.execution.sweep import check

FIXTURES = Path(__file__).parent / "impls_diagnose"


@pytest.fixture(autouse=True, scope="module")
def single_threaded_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _frame(tmp_path: Path, module: str, space: str, layer: str) -> pd.DataFrame:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    (folder / "space.toml").write_text(space, encoding="utf-8")
    return check(impl=str(FIXTURES / f"{module}.py"), layers=[layer], cases=folder, workers=0, selfcheck=False,
                 allow_frameworks=True)  # planted mistakes built on refcheck's own layers


def _assert_diagnosed(frame: pd.DataFrame, phrase: str) -> pd.DataFrame:
    """No errors; every failed row names the mistake; passed rows carry no diagnosis. Returns the failures."""
    assert not (frame["status"] == "error").any(), frame.loc[frame["status"] == "error", "reason"].tolist()
    failed = frame[frame["status"] == "failed"]
    named = failed["diagnosis"].fillna("").str.contains(phrase, regex=False)
    assert named.all(), failed.loc[~named, ["case", "tensor", "reason", "diagnosis"]].to_string()
    assert frame.loc[frame["status"] == "passed", "diagnosis"].isna().all()
    return failed


def _failed_cases(frame: pd.DataFrame) -> set[str]:
    return set(frame.loc[frame["status"] == "failed", "case"])


LSTM_CELL = """
[lstm_cell]
[lstm_cell.grid]
batch = [1, 3]
hidden_size = [1, 3]
bias = [true, false]
dtype = ["float32", "float64"]
"""
GRU_CELL = LSTM_CELL.replace("lstm_cell", "gru_cell")
RNN = """
[rnn_tanh]
[rnn_tanh.grid]
seq_len = [1, 2, 4]
initial_state = ["given", "none"]
bias = [true, false]
dtype = ["float32", "float64"]
"""
SDPA = """
[scaled_dot_product_attention]
[scaled_dot_product_attention.grid]
embed = [1, 4]
scale = ["none", 0.5]
length = [1, 3]
source = [1, 4]
dtype = ["float32", "float64"]
"""
MHA = """
[multi_head_attention]
[multi_head_attention.grid]
num_heads = [1, 2]
mask = ["none", "bool"]
bias = [true, false]
dtype = ["float32", "float64"]
[multi_head_attention.vary]
embed = [4]
"""
NLL = """
[nll_loss]
[nll_loss.grid]
reduction = ["mean", "sum"]
class_weight = [false, true]
values = ["normal", "ignored"]
dtype = ["float32", "float64"]
"""
CROSS_ENTROPY = """
[cross_entropy]
[cross_entropy.grid]
reduction = ["mean", "sum"]
class_weight = [false, true]
label_smoothing = [0.0, 0.3]
dtype = ["float32", "float64"]
"""


def test_lstm_gate_order_is_named_on_every_tensor(tmp_path):
    frame = _frame(tmp_path, "lstm_gates_ifog", LSTM_CELL, "lstm_cell")
    failed = _assert_diagnosed(frame, "gate order: your gates are stacked as i, f, o, g")
    # Swapping g and o changes everything the cell computes: every case fails, the outputs included.
    assert _failed_cases(frame) == set(frame["case"])
    assert {"h_1", "c_1", "grad_weight_ih"} <= set(failed["tensor"])


def test_gru_reset_gate_before_the_matmul(tmp_path):
    frame = _frame(tmp_path, "gru_reset_before_matmul", GRU_CELL, "gru_cell")
    failed = _assert_diagnosed(frame, "GRU reset gate applied before the hidden matmul")
    # With one hidden unit and no bias, W_hn (r h) = r (W_hn h): the two forms agree there.
    same = frame["case"].str.contains("-h1-nobias-")
    assert (frame.loc[same, "status"] == "passed").all()
    assert _failed_cases(frame) == set(frame.loc[~same, "case"])
    assert "output" in set(failed["tensor"])


def test_missing_recurrent_gradient_fails_only_sequences_longer_than_one(tmp_path):
    frame = _frame(tmp_path, "rnn_no_recurrent_grad", RNN, "rnn_tanh")
    failed = _assert_diagnosed(frame, "recurrent gradient missing")
    # The forward is right, and a sequence of one step has no recurrence to forget.
    assert not failed["tensor"].isin(["output", "h_n"]).any()
    single = frame["case"].str.contains(r"\[1x", regex=True)
    assert (frame.loc[single, "status"] == "passed").all()
    assert set(frame.loc[~single, "case"]) == _failed_cases(frame)


def test_attention_scaled_by_d_fails_only_with_the_default_scale_and_d_above_one(tmp_path):
    frame = _frame(tmp_path, "attention_scale_by_d", SDPA, "scaled_dot_product_attention")
    _assert_diagnosed(frame, "attention scores scaled by 1/d")
    hit = (frame["case"].str.contains("-scalenone-") & ~frame["query_shape"].str.endswith(", 1)")
           & ~frame["case"].str.contains("-kv1x"))
    # d = sqrt(d) for d = 1, an explicit scale is used as given, and one key gets weight 1 at any scale.
    assert _failed_cases(frame) == set(frame.loc[hit, "case"])
    assert _failed_cases(frame)


def test_multi_head_attention_scaled_by_head_size(tmp_path):
    frame = _frame(tmp_path, "attention_scale_by_d", MHA, "multi_head_attention")
    failed = _assert_diagnosed(frame, "attention scores scaled by 1/d")
    # embed 4: heads of size 4 and 2, so d != sqrt(d) everywhere.
    assert _failed_cases(frame) == set(frame["case"])
    assert {"output", "grad_query", "grad_in_proj_weight"} <= set(failed["tensor"])


def test_softmax_over_the_query_axis(tmp_path):
    frame = _frame(tmp_path, "attention_softmax_axis", SDPA, "scaled_dot_product_attention")
    _assert_diagnosed(frame, "softmax over the wrong axis")
    # With one query and one key both softmaxes are the single weight 1.
    trivial = frame["query_shape"].str.contains(r", 1, \d+\)$", regex=True) & frame["key_shape"].str.contains(
        r", 1, \d+\)$", regex=True)
    assert (frame.loc[trivial, "status"] == "passed").all()
    assert _failed_cases(frame) == set(frame.loc[~trivial, "case"])


def test_nll_weighted_mean_divided_by_the_count(tmp_path):
    frame = _frame(tmp_path, "nll_weighted_mean_by_count", NLL, "nll_loss")
    _assert_diagnosed(frame, "weighted mean divided by the number of targets")
    hit = frame["case"].str.startswith("nll_loss[mean-") & (frame["weight_shape"] != "None")
    assert _failed_cases(frame) == set(frame.loc[hit, "case"])


def test_label_smoothing_without_class_weights(tmp_path):
    frame = _frame(tmp_path, "cross_entropy_smoothing_unweighted", CROSS_ENTROPY, "cross_entropy")
    _assert_diagnosed(frame, "label smoothing without the class weights")
    hit = frame["case"].str.contains("-ls0.3-") & (frame["weight_shape"] != "None")
    assert _failed_cases(frame) == set(frame.loc[hit, "case"])
    assert _failed_cases(frame)
