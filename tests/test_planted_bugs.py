"""Planted gradient bugs: refcheck must blame exactly the affected tensor and configurations.

Each fixture in tests/impls is a correct layer with one known mistake switched on. The expected
failures are predicted here from the case's own hyperparameters (an independent description of
where each mistake shows), and compared with what a real sweep reports. The sweeps run in this
process (workers=0) to stay fast; the process pool is exercised in test_containment.py.
"""
from __future__ import annotations

import re

from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from refcheck.cases.case import Case
from refcheck.report import summary_frame
from refcheck.specs import LAYERS, UsageError
from refcheck.execution.sweep import check, plan_sweep

IMPLS = Path(__file__).parent / "impls"
DISAGREES = "backward disagrees with own forward"

# A small conv2d space where the batch size and the bias are crossed (the built-in quick sweep
# happens to put every biased case at batch 1).
BIAS_BATCH_CASES = """
[conv2d]
[conv2d.grid]
batch = [1, 2, 3]
bias = [true, false]
stride = [1, 2]
dtype = ["float32", "float64"]
[conv2d.vary]
kernel_size = [3, [3, 2]]
"""


@pytest.fixture(scope="module")
def bias_batch_cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bias_batch_cases")
    (folder / "conv.toml").write_text(BIAS_BATCH_CASES, encoding="utf-8")
    return folder


@lru_cache(maxsize=None)
def sweep(impl: str, layers: tuple[str, ...], quick: bool = True, selfcheck: bool = True,
          cases: str | None = None) -> pd.DataFrame:
    """cases.csv rows of one in-process sweep of tests/impls/<impl>.py (cached: several tests read one sweep)."""
    return check(str(IMPLS / f"{impl}.py"), list(layers), cases, quick=quick, workers=0, selfcheck=selfcheck,
                 allow_frameworks=True)  # planted bugs built on refcheck's own layers


def cases_of(layers: tuple[str, ...], quick: bool = True, cases: str | None = None) -> dict[str, Case]:
    """The Case records of the same sweep, by id (ids do not depend on the implementation)."""
    return {case.id: case for case in plan_sweep(None, list(layers), cases, quick=quick).cases}


def failing(frame: pd.DataFrame) -> set[tuple[str, str]]:
    """(case id, tensor) of every row that did not pass."""
    bad = frame[frame["status"] != "passed"]
    return set(zip(bad["case"], bad["tensor"]))


def conv_output_size(size: int, kernel: int, stride: int, padding: Any, dilation: int, axis: int) -> int:
    """torch's conv2d output length along one axis (padding as given to conv2d)."""
    if padding == "valid":
        total = 0
    elif padding == "same":
        total = dilation * (kernel - 1)
    else:
        total = 2 * padding[axis]
    return (size + total - dilation * (kernel - 1) - 1) // stride + 1


def strided_with_several_outputs(case: Case) -> bool:
    """Some axis has stride > 1 and more than one output: there, dout must be spread stride apart."""
    hparams, shapes = case.hparam_map, case.shape_map
    for axis in (0, 1):
        size, kernel = shapes["input"][2 + axis], shapes["weight"][2 + axis]
        stride, dilation = hparams["stride"][axis], hparams["dilation"][axis]
        if stride > 1 and conv_output_size(size, kernel, stride, hparams["padding"], dilation, axis) > 1:
            return True
    return False


def kernel_larger_than_1x1(case: Case) -> bool:
    return tuple(case.shape_map["weight"][2:]) != (1, 1)


def test_the_unmodified_conv_parts_pass_every_case_and_agree_with_themselves():
    frame = sweep("planted_conv_correct", ("conv2d",))
    assert len(frame) > 100 and set(frame["status"]) == {"passed"}
    grads = frame[frame["tensor"] != "output"]
    assert set(grads["selfcheck"]) == {"ok"}


def test_undilated_upstream_gradient_fails_only_grad_input_of_strided_cases():
    frame = sweep("planted_conv_stride", ("conv2d",))
    cases = cases_of(("conv2d",))
    expected = {(case_id, "grad_input") for case_id, case in cases.items() if strided_with_several_outputs(case)}
    assert len(expected) >= 10
    assert failing(frame) == expected
    assert set(frame.loc[frame["status"] != "passed", "status"]) == {"failed"}
    unit_stride = [case_id for case_id, case in cases.items() if case.hparam_map["stride"] == (1, 1)]
    assert unit_stride and not any(case_id in {c for c, _ in expected} for case_id in unit_stride)
    reasons = frame.loc[frame["status"] == "failed", "reason"]
    assert reasons.str.startswith("grad_input: mismatched elements").all()


def test_self_check_blames_the_backward_that_disagrees_with_its_own_forward():
    frame = sweep("planted_conv_stride", ("conv2d",))
    wrong = frame[frame["status"] == "failed"]
    assert not wrong.empty and set(wrong["selfcheck"]) == {DISAGREES}
    assert (wrong["selfcheck_error"].astype(float) > 1e-3).all()
    # The weight and bias gradients of the same cases, and every unaffected grad_input, are consistent.
    others = frame[(frame["tensor"] != "output") & (frame["status"] == "passed")]
    assert set(others["selfcheck"]) == {"ok"}
    assert set(frame.loc[frame["tensor"] == "grad_weight", "selfcheck"]) == {"ok"}


def test_missing_kernel_flip_fails_grad_input_for_kernels_larger_than_1x1_only():
    frame = sweep("planted_conv_no_flip", ("conv2d",), selfcheck=False)
    cases = cases_of(("conv2d",))
    expected = {(case_id, "grad_input") for case_id, case in cases.items() if kernel_larger_than_1x1(case)}
    one_by_one = [case_id for case_id, case in cases.items() if not kernel_larger_than_1x1(case)]
    assert expected and one_by_one
    assert failing(frame) == expected
    for tensor in ("output", "grad_weight", "grad_bias"):
        assert set(frame.loc[frame["tensor"] == tensor, "status"]) == {"passed"}, tensor


def test_bias_gradient_of_the_first_batch_item_fails_only_grad_bias_for_batches_above_1(bias_batch_cases):
    frame = sweep("planted_conv_bias_first_item", ("conv2d",), quick=False, cases=str(bias_batch_cases))
    cases = cases_of(("conv2d",), quick=False, cases=str(bias_batch_cases))
    expected = {(case_id, "grad_bias") for case_id, case in cases.items()
                if case.shape_map["bias"] is not None and case.shape_map["input"][0] > 1}
    assert len(cases) == 24 and len(expected) == 8
    assert failing(frame) == expected
    single = [c for c, case in cases.items() if case.shape_map["bias"] is not None and case.shape_map["input"][0] == 1]
    assert set(frame.loc[frame["case"].isin(single), "status"]) == {"passed"}


def test_gradient_to_every_tied_maximum_fails_only_on_inputs_with_ties():
    frame = sweep("planted_maxpool_all_ties", ("max_pool2d",), quick=False)
    cases = cases_of(("max_pool2d",), quick=False)
    assert {case.values for case in cases.values()} == {"normal", "ties", "very_negative", "below_sentinels", "near_max",
                                                        "tiny", "mixed_magnitudes"}
    tie_prone = {case_id for case_id, case in cases.items()
                 if case.values == "ties" and case.hparam_map["kernel_size"] != (1, 1)}
    wrong = failing(frame)
    assert {tensor for _, tensor in wrong} == {"grad_input"}
    failed_cases = {case_id for case_id, _ in wrong}
    assert failed_cases <= tie_prone
    # A ties case can still pass when no window happens to hold a tied maximum (a small window
    # mostly over padding); nearly all of them do hold one.
    assert len(failed_cases) >= 0.75 * len(tie_prone)
    assert set(frame.loc[frame["values"] != "ties", "status"]) == {"passed"}
    assert set(frame.loc[frame["tensor"] == "output", "status"]) == {"passed"}
    # The self-check nudges inputs off ties before differencing, so it cannot see this mistake.
    ties_rows = frame[(frame["tensor"] == "grad_input") & (frame["values"] == "ties")]
    assert set(ties_rows["selfcheck"]) == {"ok"}


def test_self_check_raises_no_false_alarm_on_the_built_in_max_pool2d():
    """The built-in max_pool2d is right, so its self-check must say "ok" on every case.

    Very negative inputs (about -1000) make the finite-difference step 1e-3, large enough to
    step across a kink where two window elements are close, which reads as a disagreement.
    """
    frame = check(None, ["max_pool2d"], quick=False, workers=0)
    assert set(frame["status"]) == {"passed"}
    grads = frame[frame["tensor"] == "grad_input"]
    alarms = grads.loc[grads["selfcheck"] != "ok", ["case", "selfcheck_error"]]
    assert alarms.empty, f"self-check false alarms:\n{alarms.to_string()}"


def test_float64_computed_in_float32_fails_float64_cases_and_passes_float32_cases():
    frame = sweep("planted_linear_float32_inside", ("linear",), quick=False, selfcheck=False)
    single, double = frame[frame["dtype"] == "float32"], frame[frame["dtype"] == "float64"]
    assert len(single) == len(double) > 50
    assert set(single["status"]) == {"passed"}
    assert set(double["status"]) == {"failed"}
    assert set(double["tensor"]) == {"output", "grad_input", "grad_weight", "grad_bias"}
    # float32 rounding is about 2**-24 relative: millions of float64 epsilons against a few hundred allowed.
    assert (double["error_eps"].astype(float) > 1e6).all()
    assert (double["tolerance_eps"].astype(float) < 1e3).all()
    assert (single["error_eps"].astype(float) <= single["tolerance_eps"].astype(float)).all()


def test_missing_dilation_and_groups_keywords_leave_those_configurations_out_of_the_sweep():
    # Cases are generated inside what the implementation supports (no dilation, no groups argument):
    # none of them needs another value, the rest of the space keeps full pairwise coverage, and the
    # configurations left out are summarised once for the layer instead of as skipped rows.
    impl = str(IMPLS / "planted_conv_no_dilation_groups.py")
    plan = plan_sweep(impl, ["conv2d"], quick=True)
    assert plan.cases and all(case.hparam_map["dilation"] == (1, 1) and case.hparam_map["groups"] == 1
                              for case in plan.cases)
    assert all(row["complete"] for row in plan.coverage_rows())
    line = plan.unsupported["conv2d"]
    assert "dilation != (1, 1)" in line and "groups != 1" in line and "conv2d_forward" in line
    assert re.search(r": (\d+) configurations$", line)
    frame = sweep("planted_conv_no_dilation_groups", ("conv2d",), selfcheck=False)
    assert set(frame["status"]) == {"passed"}
    builtin = cases_of(("conv2d",))
    # Ids name configurations: every case that runs here has the built-in sweep's id for it, or is
    # one the restricted space adds to hold its coverage; the quick ones are among them.
    full = {case.id for case in plan_sweep(impl, ["conv2d"]).cases}
    assert set(frame["case"]) <= set(builtin) | full and {case.id for case in plan.cases} <= full
    assert set(frame["case"]) & set(builtin)


def test_a_layer_the_module_lacks_is_reported_as_not_implemented():
    impl = str(IMPLS / "planted_conv_no_dilation_groups.py")
    plan = plan_sweep(impl, quick=True)
    assert plan.not_implemented == [name for name in LAYERS if name != "conv2d"]
    assert {case.layer for case in plan.cases} == {"conv2d"}
    frame = sweep("planted_conv_no_dilation_groups", ("conv2d",), selfcheck=False)
    summary = summary_frame(frame, plan.not_implemented).set_index("layer")
    assert summary.loc["conv2d", "cases"] > 0 and summary.loc["conv2d", "note"] == ""
    absent = summary.drop(index="conv2d")
    assert set(absent.index) == set(plan.not_implemented)
    assert set(absent["note"]) == {"not implemented"} and set(absent["cases"]) == {0}
    # Asked for explicitly, a missing layer is a usage error before anything runs, naming what the module has.
    with pytest.raises(UsageError, match=r"has no max_pool2d \(it defines: conv2d_forward\)"):
        plan_sweep(impl, ["max_pool2d"], quick=True)


def test_true_convolution_is_self_consistent_but_fails_against_torch():
    frame = sweep("planted_true_convolution", ("conv2d",))
    cases = cases_of(("conv2d",))
    flipped = {case_id for case_id, case in cases.items() if kernel_larger_than_1x1(case)}
    assert flipped and len(flipped) < len(cases)
    assert failing(frame) == {(case_id, tensor) for case_id in flipped
                              for tensor in ("output", "grad_input", "grad_weight")}
    assert set(frame.loc[frame["tensor"] == "grad_bias", "status"]) == {"passed"}
    # Its backward is the exact derivative of its own forward: the self-check finds nothing.
    assert set(frame.loc[frame["tensor"] != "output", "selfcheck"]) == {"ok"}
