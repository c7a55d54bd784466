"""Worst means worst: errors, then structural failures, then the largest error relative to the
tolerance (never epsilons of different dtypes compared); groups by layer and cause."""
from __future__ import annotations

import math

from refcheck.report import cases_frame, failure_groups, skip_reasons, summary_frame
from refcheck.report.groups import repro_command
from refcheck.report.ranking import cause, rank


def rec(case, status="passed", error=1.0, tolerance=64.0, dtype="float32", tensor="output", reason=None,
        diagnosis=None, layer="relu", torch_error=0.5):
    return {"layer": layer, "case": case, "tensor": tensor, "dtype": dtype, "status": status,
            "reason": reason if reason is not None else ("" if status == "passed" else f"{tensor}: mismatched"),
            "error_eps": error, "torch_error_eps": torch_error, "tolerance_eps": tolerance, "diagnosis": diagnosis}


def test_the_worst_case_is_the_largest_error_relative_to_tolerance_not_the_first_failure():
    records = [rec("relu[first]", "failed", 1.84e7), rec("relu[second]", "failed", 3.98e15), rec("relu[ok]")]
    row = summary_frame(cases_frame(records)).set_index("layer").loc["relu"]
    assert row["worst_case"] == "relu[second]"
    assert math.isclose(row["output_ratio"], 3.98e15 / 64.0)
    assert row["output_eps"] == 3.98e15 and row["output_dtype"] == "float32"


def test_float32_and_float64_epsilons_are_never_compared_directly():
    # 60 float32 eps is closer to failing (60/64) than 200 float64 eps (200/256), though 200 > 60.
    records = [rec("relu[f32]", error=60.0, tolerance=64.0), rec("relu[f64]", error=200.0, tolerance=256.0,
                                                                  dtype="float64")]
    row = summary_frame(cases_frame(records)).set_index("layer").loc["relu"]
    assert row["worst_case"] == "relu[f32]" and row["output_dtype"] == "float32"
    assert math.isclose(row["output_ratio"], 60.0 / 64.0) and math.isclose(row["output_torch_ratio"], 0.5 / 64.0)


def test_shape_dtype_and_non_finite_failures_rank_above_any_numeric_one():
    numeric = rec("relu[huge]", "failed", 1e300)
    for reason in ("output shape (2, 3) != expected (3, 2)", "output dtype float64 != expected float32",
                   "output has 3 non-finite values where the reference is finite (first at index (0,): nan)"):
        structural = rec("relu[s]", "failed", math.nan, reason=reason)
        assert rank(structural) > rank(numeric)
        row = summary_frame(cases_frame([numeric, structural])).set_index("layer").loc["relu"]
        assert row["worst_case"] == "relu[s]" and row["output_kind"] in ("shape", "dtype", "non-finite")
    errored = rec("relu[e]", "error", math.nan, reason="forward raised ValueError: no")
    assert rank(errored) > rank(rec("relu[s]", "failed", math.nan, reason="output shape (2,) != expected (3,)"))


def test_groups_by_layer_and_cause_with_the_worst_case_and_a_rerun_command():
    records = [
        rec("conv2d[a]", "failed", 900.0, layer="conv2d", diagnosis="kernel flipped: details for a"),
        rec("conv2d[b]", "failed", 5000.0, layer="conv2d", diagnosis="kernel flipped: details for b"),
        rec("conv2d[c]", "failed", math.nan, layer="conv2d", reason="output shape (1, 2) != expected (2, 1)"),
        rec("conv2d[d]"),
        rec("relu[x]", "skipped", math.nan, reason="unsupported: relu_forward does not accept inplace; case needs 1"),
        rec("relu[y]", "skipped", math.nan, reason="unsupported: relu_forward does not accept inplace; case needs 2"),
    ]
    options = {"impl": "my layers.py", "seed": 3, "quick": True, "timeout": 60.0}
    groups = {g.cause: g for g in failure_groups(records, options)}
    assert set(groups) == {"kernel flipped", "wrong shape"}
    flipped = groups["kernel flipped"]
    assert (flipped.count, flipped.case, flipped.diagnosis) == (2, "conv2d[b]", "kernel flipped: details for b")
    assert flipped.command == ("refcheck run --impl 'my layers.py' --layers conv2d --case 'conv2d[b]' --seed 3 "
                               "--quick")
    assert groups["wrong shape"].count == 1
    assert skip_reasons(records) == [{"layer": "relu", "cases": 2,
                                      "reason": "unsupported: relu_forward does not accept inplace"}]


def test_cause_is_the_diagnosis_title_or_the_kind_of_reason():
    assert cause(rec("a", "failed", diagnosis="input mutated in place (x): work on copies")) == "input mutated in place"
    assert cause(rec("a", "error", reason="backward raised KeyError: 'w'")) == "backward raised KeyError"
    assert cause(rec("a", "error", reason="timeout: the case did not finish within 1 s")) == "timeout"
    assert cause(rec("a", "failed", reason="output: mismatched elements 3 / 4")) == "wrong values"


def test_repro_command_defaults_stay_out_of_the_command():
    assert repro_command({}, "relu", "relu[4x5-f32]") == "refcheck run --layers relu --case 'relu[4x5-f32]'"
    assert repro_command({"timeout": 5.0, "dtype": "float64", "cases": "my cases"}, "relu", "relu[7-f64]") == (
        "refcheck run --layers relu --case 'relu[7-f64]' --cases 'my cases' --dtype float64 --timeout 5")


def test_a_backward_error_after_a_wrong_output_shape_is_grouped_under_the_shape():
    """The backward of a forward whose output has the wrong shape is handed an upstream gradient of
    torch's shape; its error follows from the forward's, which names the case's group."""
    case = [rec("conv2d[p1]", "failed", math.nan, layer="conv2d",
                reason="output shape (1, 4, 3, 2) != expected (1, 4, 4, 3)"),
            rec("conv2d[p1]", "error", math.nan, layer="conv2d", tensor="grad_input",
                reason="backward raised ValueError: operands could not be broadcast together")]
    alone = [rec("conv2d[q]", "error", math.nan, layer="conv2d", tensor="grad_input",
                 reason="backward raised ValueError: operands could not be broadcast together"),
             rec("conv2d[q]", layer="conv2d")]
    groups = {g.cause: g for g in failure_groups(case + alone)}
    assert set(groups) == {"wrong shape", "backward raised ValueError"}
    shape = groups["wrong shape"]
    assert shape.case == "conv2d[p1]" and shape.status == "error" and shape.reason.startswith("output shape")
