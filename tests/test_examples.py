"""The example modules (contract style, CS231n style, object style) pass through the CLI and the plugin."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import refcheck
from refcheck.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MODULES = ["functional_layers.py", "cs231n_layers.py", "object_layers.py"]
LAYERS = {"functional_layers.py": {"conv2d", "linear", "max_pool2d", "relu"},
          "cs231n_layers.py": {"conv2d", "cross_entropy", "linear", "max_pool2d", "relu"},
          "object_layers.py": {"conv2d", "linear", "max_pool2d", "mse_loss", "relu"}}


@pytest.mark.parametrize("module", MODULES)
def test_example_passes_the_cli_with_unsupported_configurations_summarised(tmp_path, module):
    # Cases are generated inside what each example supports: every one runs and passes, and what is
    # left out is summarised once per layer (results.json "not_supported"), not as skipped rows.
    out = tmp_path / "reports"
    assert main(["run", "--impl", str(EXAMPLES / module), "--out", str(out), "--workers", "0"]) == 0
    frame = pd.read_csv(out / "cases.csv")
    assert set(frame["layer"]) == LAYERS[module]  # every layer the example defines is checked
    # A loss written without class weights runs every case without them; the weighted ones are
    # skipped as unsupported (a trailing optional tensor it does not take).
    skipped = frame[frame["status"] == "skipped"]
    assert set(frame["status"]) <= {"passed", "skipped"}
    assert skipped["reason"].astype(str).str.fullmatch(r"unsupported: \S+ takes no weight tensor; this case has one").all()
    assert (frame["status"] == "passed").sum() > 100
    assert frame["implementation"].notna().all()
    results = json.loads((out / "results.json").read_text())
    assert "dilation" in results["not_supported"]["conv2d"]
    assert "not implemented" in (out / "summary.md").read_text()


def test_functional_example_lacking_dilation_and_groups_runs_only_supported_cases(tmp_path):
    frame = refcheck.check(str(EXAMPLES / "functional_layers.py"), layers=["conv2d"], workers=0)
    assert len(frame) > 0
    assert (frame["dilation"] == "(1, 1)").all() and (frame["groups"] == 1).all()
    assert (frame["status"] == "passed").all()
    assert frame["implementation"].str.startswith("functional_layers.conv2d_forward").all()


@pytest.mark.parametrize("module", MODULES)
def test_example_passes_as_pytest_tests_in_an_empty_folder(tmp_path, module):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--refcheck-impl",
                             str(EXAMPLES / module), "--refcheck-quick", "--refcheck-workers", "1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert " passed" in last and "failed" not in last and "error" not in last
