"""CS231n-style and object-style recurrent, attention, activation and loss layers, written from
scratch in their own layouts (tests/impls/), checked through the adapters against torch: every case
passes or is skipped for a stated reason, none fails."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from refcheck.execution.sweep import check

IMPLS = Path(__file__).parent / "impls"

CS231N_SPACES = """
[rnn_tanh_cell.grid]
hidden_size = [1, 3]
bias = [true, false]
dtype = ["float32", "float64"]
[lstm_cell.grid]
hidden_size = [1, 3]
bias = [true, false]
dtype = ["float32", "float64"]
[rnn_tanh.grid]
seq_len = [1, 3]
initial_state = ["given", "none"]
bias = [true, false]
dtype = ["float32", "float64"]
[lstm.grid]
seq_len = [1, 3]
initial_state = ["given", "none", "h0", "c0"]
bias = [true, false]
dtype = ["float32", "float64"]
[linear.grid]
batch_shape = [[4], [2, 3]]
bias = [true, false]
dtype = ["float32", "float64"]
[multi_margin_loss.grid]
p = [1, 2]
margin = [1.0, 0.5]
reduction = ["mean", "sum"]
class_weight = [false, true]
values = ["normal", "ties"]
dtype = ["float64"]
"""

OBJECT_SPACES = """
[elu.grid]
alpha = [1.0, 0.5]
values = ["normal", "zeros"]
[silu.grid]
input_shape = [[4, 5], [2, 3, 4]]
[hardtanh.grid]
min_val = [-1.0, 0.0]
values = ["normal", "bounds"]
[prelu.grid]
input_shape = [[4, 5], [2, 3, 4]]
num_parameters = [1, "channels"]
[l1_loss.grid]
reduction = ["mean", "sum", "none"]
values = ["normal", "ties"]
[nll_loss.grid]
reduction = ["mean", "sum", "none"]
class_weight = [false, true]
values = ["normal", "ignored"]
[rnn_tanh_cell.grid]
hidden_size = [1, 3]
bias = [true, false]
dtype = ["float32", "float64"]
[lstm_cell.grid]
hidden_size = [1, 3]
bias = [true, false]
dtype = ["float32", "float64"]
[multi_head_attention.grid]
num_heads = [1, 2]
bias = [true, false]
dtype = ["float32", "float64"]
[multi_head_attention.vary]
embed = [4]
"""


@pytest.fixture(autouse=True, scope="module")
def single_threaded_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _frame(tmp_path: Path, module: str, spaces: str) -> pd.DataFrame:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    (folder / "spaces.toml").write_text(spaces, encoding="utf-8")
    return check(impl=str(IMPLS / f"{module}.py"), cases=folder, workers=0, selfcheck=False)


def test_cs231n_recurrent_temporal_affine_and_svm_loss_match_torch(tmp_path):
    frame = _frame(tmp_path, "cs231n_recurrent", CS231N_SPACES)
    bad = frame[frame["status"].isin(["failed", "error"])]
    assert bad.empty, bad[["case", "tensor", "reason"]].to_string()
    passed = frame[frame["status"] == "passed"]
    assert set(passed["layer"]) == {"rnn_tanh_cell", "lstm_cell", "rnn_tanh", "lstm", "linear", "multi_margin_loss"}
    skipped = frame[frame["status"] == "skipped"]
    reasons = set(skipped["reason"])
    # Exactly what the CS231n signatures cannot express is skipped.
    assert any("starts from c0 = 0" in r for r in reasons)
    assert any("temporal_affine_forward takes (N, T, D)" in r for r in reasons)
    # Per-case limits are skipped rows; hyperparameter values svm_loss cannot take are left out of
    # the sweep (its supported space) and never run.
    svm_rows = frame[frame["layer"] == "multi_margin_loss"]
    assert not svm_rows.empty
    assert set(svm_rows["p"].astype(float)) <= {1.0} and set(svm_rows["reduction"]) <= {"'mean'"}
    assert any("no class weights" in r for r in reasons) or svm_rows["weight_shape"].astype(str).isin(["None", "nan"]).all()
    svm = frame[(frame["layer"] == "multi_margin_loss") & (frame["status"] == "passed")]
    assert svm["case"].str.startswith("multi_margin_loss[mean-p1-margin1-").all() and not svm.empty
    lstm = frame[frame["layer"] == "lstm"]
    assert set(lstm.loc[lstm["status"] == "passed", "tensor"]) >= {"c_n", "grad_h0", "grad_weight_hh"}


def test_object_style_layers_match_torch(tmp_path):
    frame = _frame(tmp_path, "objects_seqloss", OBJECT_SPACES)
    bad = frame[frame["status"] != "passed"]
    assert bad.empty, bad[["case", "tensor", "reason"]].to_string()
    assert set(frame["layer"]) == {"elu", "silu", "hardtanh", "prelu", "l1_loss", "nll_loss", "rnn_tanh_cell",
                                   "lstm_cell", "multi_head_attention"}
