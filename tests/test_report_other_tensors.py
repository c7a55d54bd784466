"""The per-layer summary covers every compared tensor: the extra outputs of multi-output layers
(new_running_mean, new_running_var, h_n, c_n, ...) and their gradients are folded into one "other"
column (the worst of them, named), on the console at 80 columns, in summary.md and summary.html."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from refcheck.report.tables import display_summary, summary_frame

ROOT = Path(__file__).resolve().parents[1]
IMPLS = ROOT / "tests" / "impls"


def _record(layer, tensor, status="passed", error=1.0, tolerance=64.0, case=None):
    return {"layer": layer, "case": case or f"{layer}[a-f32]", "tensor": tensor, "dtype": "float32",
            "status": status, "reason": "" if status == "passed" else f"{tensor}: mismatched elements 1 / 4",
            "diagnosis": None, "error_eps": error, "tolerance_eps": tolerance, "torch_error_eps": 1.0}


def test_other_tensors_are_summarised_by_their_worst_one():
    records = [_record("batch_norm", "output"), _record("batch_norm", "grad_input"),
               _record("batch_norm", "new_running_mean", error=2.0),
               _record("batch_norm", "new_running_var", status="failed", error=320.0, case="batch_norm[b-f32]"),
               _record("relu", "output"), _record("relu", "grad_input")]
    summary = summary_frame(pd.DataFrame(records)).set_index("layer")
    assert summary.loc["batch_norm", "other_tensor"] == "new_running_var"
    assert summary.loc["batch_norm", "other_ratio"] == 5.0 and summary.loc["batch_norm", "other_failing"]
    assert summary.loc["batch_norm", "worst_case"] == "batch_norm[b-f32]"
    assert summary.loc["relu", "other_tensor"] == "" and pd.isna(summary.loc["relu", "other_ratio"])
    shown = display_summary(summary.reset_index()).set_index("layer")
    assert shown.loc["batch_norm", "other tensors err/tol (torch)"] == "5 (0.016) new_running_var"
    assert shown.loc["relu", "other tensors err/tol (torch)"] == ""


def test_layers_without_other_tensors_keep_the_four_columns():
    records = [_record("relu", "output"), _record("relu", "grad_input")]
    shown = display_summary(summary_frame(pd.DataFrame(records)))
    assert not any(column.startswith("other") for column in shown.columns)


def test_a_wrong_running_variance_shows_in_the_reports_and_on_the_console(tmp_path):
    source = (IMPLS / "objects_convnorm.py").read_text(encoding="utf-8")
    planted = source.replace("var * count / (count - 1)", "var")  # running variance updated with the biased one
    assert planted != source
    module = tmp_path / "my_norms.py"
    module.write_text(planted, encoding="utf-8")
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    out = tmp_path / "reports"
    result = subprocess.run([sys.executable, "-m", "refcheck", "run", "--impl", str(module), "--layers", "batch_norm", "--allow-frameworks",
                             "--quick", "--no-plots", "--out", str(out)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    frame = pd.read_csv(out / "cases.csv")
    failing = set(frame.loc[frame["status"] == "failed", "tensor"])
    assert failing == {"new_running_var"}
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("layer"))
    assert header.split()[-1] == "other"
    row = next(line for line in lines if line.startswith("batch_norm "))
    assert float(row.split()[-1]) > 1  # the failing running variance, in the table
    assert "failing: batch_norm: new_running_var" in result.stdout
    assert max(len(line) for line in lines[:lines.index(row) + 1]) <= 80
    markdown = (out / "summary.md").read_text(encoding="utf-8")
    assert "other tensors err/tol (torch)" in markdown and "new_running_var" in markdown
    html = (out / "summary.html").read_text(encoding="utf-8")
    assert "other tensors err/tol (torch)" in html and "new_running_var" in html
