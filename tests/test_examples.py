"""The example modules (contract style, CS231n style, object style) pass through the CLI and the plugin."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import refcheck
from refcheck.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MODULES = ["functional_layers.py", "cs231n_layers.py", "object_layers.py"]


@pytest.mark.parametrize("module", MODULES)
def test_example_passes_the_cli_with_unsupported_cases_skipped(tmp_path, module):
    out = tmp_path / "reports"
    assert main(["run", "--impl", str(EXAMPLES / module), "--out", str(out), "--workers", "0"]) == 0
    frame = pd.read_csv(out / "cases.csv")
    assert set(frame["status"]) == {"passed", "skipped"}
    assert (frame["status"] == "passed").sum() > 100
    skipped = frame[frame["status"] == "skipped"]
    assert skipped["reason"].str.startswith("unsupported").all()
    assert "not implemented" in (out / "summary.md").read_text()


def test_functional_example_lacking_dilation_and_groups_skips_exactly_those_cases(tmp_path):
    frame = refcheck.check(str(EXAMPLES / "functional_layers.py"), layers=["conv2d"], workers=0)
    needs = (frame["dilation"] != "(1, 1)") | (frame["groups"] != 1)
    assert (frame[needs]["status"] == "skipped").all()
    assert (frame[~needs]["status"] == "passed").all()
    assert frame[needs]["reason"].str.contains("does not accept (?:dilation|groups)").all()


@pytest.mark.parametrize("module", MODULES)
def test_example_passes_as_pytest_tests_in_an_empty_folder(tmp_path, module):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--refcheck-impl",
                             str(EXAMPLES / module), "--refcheck-quick", "--refcheck-workers", "1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert " passed" in last and "skipped" in last and "failed" not in last
