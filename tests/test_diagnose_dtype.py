"""A result of the wrong dtype fails, and its values are still compared: the error columns are
filled, and the reason and the diagnosis say whether the values are right as well."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refcheck.compare import compare_tensor
from refcheck.execution.sweep import check

FIXTURES = Path(__file__).parent / "impls_diagnose"

MSE = """
[mse_loss]
[mse_loss.grid]
input_shape = [[4, 5], [8]]
reduction = ["mean", "sum"]
dtype = ["float32", "float64"]
"""


def _frame(tmp_path: Path, module: str) -> pd.DataFrame:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    (folder / "space.toml").write_text(MSE, encoding="utf-8")
    return check(impl=str(FIXTURES / f"{module}.py"), layers=["mse_loss"], cases=folder, workers=0, selfcheck=False,
                 allow_frameworks=True)  # planted mistakes built on refcheck's own layers


def test_wrong_dtype_with_right_values_fails_and_says_values_right():
    reference = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    outcome = compare_tensor("grad_input", reference.copy(), reference, reference.astype(np.float32), "float32")
    assert not outcome.passed
    assert outcome.reason == "grad_input dtype float64 != expected float32; values right"
    assert outcome.error_eps == 0.0 and outcome.tolerance_eps == 64.0 and outcome.mismatched == 0


def test_wrong_dtype_with_wrong_values_reports_both_and_fills_the_error_columns():
    reference = np.arange(-3.0, 3.0).reshape(2, 3) / 4  # exact in float32
    result = reference.astype(np.float32)
    result[1, 2] += 0.5
    outcome = compare_tensor("output", result, reference, None, "float64")
    assert not outcome.passed
    assert outcome.reason.startswith("output dtype float32 != expected float64; values also wrong: "
                                     "output: mismatched elements 1 / 6")
    assert outcome.worst_index == (1, 2) and outcome.max_abs_error == pytest.approx(0.5)
    assert outcome.error_eps == pytest.approx(0.5 / 0.75 / np.finfo(np.float64).eps)


def test_non_numeric_results_still_fail_on_their_dtype_alone():
    outcome = compare_tensor("output", np.array(["a", "b"]), np.zeros(2), None, "float64")
    assert not outcome.passed and outcome.reason == "output dtype <U1 != expected float64"
    assert outcome.error_eps is None


def test_right_values_in_a_float64_buffer_are_diagnosed_as_such(tmp_path):
    frame = _frame(tmp_path, "mse_float64_buffer")
    failed = frame[frame["status"] == "failed"]
    # Only the float32 cases' gradients: float64 cases get the dtype they expect.
    assert set(failed["tensor"]) == {"grad_input"} and set(failed["dtype"]) == {"float32"} and len(failed) == 4
    assert (frame.loc[~frame.index.isin(failed.index), "status"] == "passed").all()
    assert set(failed["reason"]) == {"grad_input dtype float64 != expected float32; values right"}
    assert set(failed["diagnosis"]) == {"returns float64 for float32 inputs (np.zeros without dtype?); values right"}
    assert (failed["error_eps"] <= failed["tolerance_eps"]).all() and failed["error_eps"].notna().all()


def test_a_value_mistake_behind_a_wrong_dtype_is_named_too(tmp_path):
    frame = _frame(tmp_path, "mse_float64_no_factor_two")
    failed = frame[frame["status"] == "failed"]
    assert set(failed["tensor"]) == {"grad_input"} and len(failed) == 8
    single, double = failed[failed["dtype"] == "float32"], failed[failed["dtype"] == "float64"]
    assert single["reason"].str.startswith(
        "grad_input dtype float64 != expected float32; values also wrong: grad_input: mismatched elements").all()
    factor = "missing factor 2 in the MSE gradient: d/dinput (input - target)^2 = 2 (input - target)"
    expected = f"returns float64 for float32 inputs (np.zeros without dtype?); values also wrong: {factor}"
    assert set(single["diagnosis"]) == {expected}
    assert (single["error_eps"] > single["tolerance_eps"]).all()
    # float64 cases have the right dtype: the value mistake alone, as before.
    assert double["reason"].str.startswith("grad_input: mismatched elements").all()
    assert set(double["diagnosis"]) == {factor}
