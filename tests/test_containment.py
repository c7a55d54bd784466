"""Containment: whatever a user's implementation does, the sweep finishes and says what happened.

Each fixture in tests/impls misbehaves on a few cases only (raises, wrong shape or dtype, NaN,
mutates its inputs, hangs, kills its process). The sweeps run through the real path (the
process pool behind ``refcheck.execution.sweep.check`` and ``refcheck.cli.main``), and every test checks
both the rows of the affected cases and that the unaffected cases still pass.
"""
from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import refcheck.execution.sweep
from refcheck.cli import main
from refcheck.execution.options import CheckOptions
from refcheck.execution.runner import run_cases
from refcheck.execution.sweep import check, plan_sweep

IMPLS = Path(__file__).parent / "impls"
HOSTILE = Path(__file__).parent / "impls_hostile"

# Small spaces so each sweep takes about a second: every relu case has a distinct (shape, dtype),
# so a fixture can misbehave on exactly one case.
CASES = """
[relu]
[relu.grid]
input_shape = [[4, 5], [2, 3, 4, 4], [7]]
dtype = ["float32", "float64"]
[relu.vary]
values = ["normal", "zeros"]

[log_softmax]
[log_softmax.grid]
input_shape = [[4, 5]]
dim = [1]
values = ["normal", "large"]
dtype = ["float32"]

[conv2d]
[conv2d.grid]
stride = [1, 2]
groups = [1, 2]
input_size = [[7, 7], [8, 8]]
[conv2d.vary]
channels = [[4, 4]]
dtype = ["float32", "float64"]
"""


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("containment_cases")
    (folder / "small.toml").write_text(CASES, encoding="utf-8")
    return folder


def sweep(impl: str, layers: list[str], cases: Path, *, workers: int = 2, timeout: float = 30.0) -> pd.DataFrame:
    """cases.csv rows of a sweep of tests/impls/<impl>.py in the process pool."""
    return check(str(IMPLS / f"{impl}.py"), layers, cases, workers=workers, timeout=timeout,
                 allow_frameworks=True)  # broken variants of refcheck's own layers


def rows(frame: pd.DataFrame, case_has: str, tensor: str | None = None) -> pd.DataFrame:
    """Rows whose case id contains ``case_has`` (and of one tensor)."""
    selected = frame[frame["case"].str.contains(case_has, regex=False)]
    return selected if tensor is None else selected[selected["tensor"] == tensor]


def statuses(frame: pd.DataFrame) -> set[str]:
    return set(frame["status"])


def test_exceptions_become_error_rows_with_type_and_message(cases_dir):
    frame = sweep("broken_raises", ["relu", "conv2d"], cases_dir)
    assert len(frame) == 6 * 2 + 8 * 4
    forward_raised = rows(frame, "relu[7-")
    assert len(forward_raised) == 4 and statuses(forward_raised) == {"error"}
    assert set(forward_raised["reason"]) == {
        "forward raised ValueError: relu_forward expects a batch of activations, got shape (7,)"}
    # Backward raised: the output was still compared (and is right); the gradient rows are errors.
    four_d = rows(frame, "relu[2x3x4x4-")
    assert statuses(four_d[four_d["tensor"] == "output"]) == {"passed"}
    grads = four_d[four_d["tensor"] == "grad_input"]
    assert len(grads) == 2 and statuses(grads) == {"error"}
    assert set(grads["reason"]) == {
        "backward raised RuntimeError: relu_backward has no channel-wise path for 4-d activations"}
    assert statuses(rows(frame, "relu[4x5-")) == {"passed"}

    grouped = rows(frame, "-g2-")
    assert statuses(grouped[grouped["tensor"] == "output"]) == {"passed"}
    grouped_grads = grouped[grouped["tensor"] != "output"]
    assert len(grouped_grads) == 4 * 3 and statuses(grouped_grads) == {"error"}
    assert grouped_grads["reason"].str.fullmatch(
        r"backward raised NotImplementedError: grouped conv2d backward \(groups=2\) is not written yet").all()
    assert statuses(rows(frame, "-g1-")) == {"passed"}


def test_a_wrong_gradient_shape_fails_that_tensor_with_both_shapes_in_the_reason(cases_dir):
    frame = sweep("broken_wrong_shape", ["conv2d"], cases_dir)
    # Stride 2 over 8 rows leaves a row no window uses: the uncropped grad_weight has 4x4 taps.
    leftover = frame[frame["case"].str.contains("s2-") & frame["case"].str.contains("8x8")]
    wrong = leftover[leftover["tensor"] == "grad_weight"]
    assert len(wrong) == 2 and statuses(wrong) == {"failed"}
    for reason, groups in zip(wrong["reason"], wrong["groups"]):
        channels = 4 // int(groups)
        assert reason == f"grad_weight shape (4, {channels}, 4, 4) != expected (4, {channels}, 3, 3)"
    assert statuses(leftover[leftover["tensor"] != "grad_weight"]) == {"passed"}
    assert statuses(frame.drop(index=leftover.index)) == {"passed"}


def test_a_float64_gradient_for_a_float32_case_fails_with_the_dtypes_in_the_reason(cases_dir):
    frame = sweep("broken_wrong_dtype", ["relu"], cases_dir, workers=1)
    single = frame[(frame["dtype"] == "float32") & (frame["tensor"] == "grad_input")]
    assert len(single) == 3 and statuses(single) == {"failed"}
    assert set(single["reason"]) == {"grad_input dtype float64 != expected float32; values right"}
    assert set(single["diagnosis"]) == {"returns float64 for float32 inputs (np.zeros without dtype?); values right"}
    assert statuses(frame.drop(index=single.index)) == {"passed"}


def test_nan_and_infinity_fail_as_non_finite(cases_dir):
    frame = sweep("broken_non_finite", ["relu", "log_softmax"], cases_dir)
    relu = frame[frame["layer"] == "relu"]
    zeros = relu[relu["values"] == "zeros"]
    assert not zeros.empty and len(zeros) < len(relu)
    nan_rows = zeros[zeros["tensor"] == "output"]
    assert statuses(nan_rows) == {"failed"}
    assert nan_rows["reason"].str.match(r"output has \d+ non-finite values where the reference is finite").all()
    assert nan_rows["reason"].str.endswith(": nan)").all()
    assert statuses(zeros[zeros["tensor"] == "grad_input"]) == {"passed"}
    assert statuses(relu[relu["values"] == "normal"]) == {"passed"}

    softmax = frame[frame["layer"] == "log_softmax"]
    large = softmax[softmax["values"] == "large"]
    assert len(large) == 2 and statuses(large) == {"failed"}
    assert large["reason"].str.contains("non-finite values where the reference is finite").all()
    assert large.loc[large["tensor"] == "output", "reason"].str.contains("-inf").all()
    assert statuses(softmax[softmax["values"] == "normal"]) == {"passed"}


@pytest.mark.parametrize(("impl", "affected", "reason"), [
    ("broken_mutates_input", "relu[4x5-", "forward mutated its input 'input' in place"),
    ("broken_mutates_dout", "relu[2x3x4x4-", "backward mutated the upstream gradient 'dout' in place"),
])
def test_mutating_an_argument_fails_the_case_and_names_the_tensor(cases_dir, impl, affected, reason):
    frame = sweep(impl, ["relu"], cases_dir)
    hit = rows(frame, affected)
    assert len(hit) == 4 and statuses(hit) == {"failed"}
    assert set(hit["reason"]) == {reason}
    assert statuses(frame.drop(index=hit.index)) == {"passed"}


def test_a_hanging_case_is_stopped_at_the_timeout_and_the_others_pass(cases_dir):
    started = time.perf_counter()
    frame = sweep("broken_hangs", ["relu"], cases_dir, timeout=3)
    elapsed = time.perf_counter() - started
    hung = rows(frame, "relu[2x3x4x4-")
    hung = hung[hung["dtype"] == "float32"]
    assert len(hung) == 2 and statuses(hung) == {"error"}
    assert set(hung["reason"]) == {"timeout: the case did not finish within 3 s (the worker was stopped)"}
    assert len(frame) == 12 and statuses(frame.drop(index=hung.index)) == {"passed"}
    assert elapsed < 60  # the fixture sleeps 1000 s


def test_a_worker_that_dies_becomes_an_error_row_and_the_sweep_goes_on(cases_dir):
    frame = sweep("broken_dies", ["relu"], cases_dir)
    exited = rows(frame, "relu[4x5-")
    exited = exited[exited["dtype"] == "float32"]
    assert len(exited) == 2 and statuses(exited) == {"error"}
    assert set(exited["reason"]) == {"worker died: the process running the case exited with code 3"}
    crashed = rows(frame, "relu[7-")
    crashed = crashed[crashed["dtype"] == "float32"]
    assert len(crashed) == 2 and statuses(crashed) == {"error"}
    assert crashed["reason"].str.fullmatch(r"worker died: .* exited with code -11 \(signal 11\)").all()
    survivors = frame.drop(index=exited.index.union(crashed.index))
    assert len(survivors) == 8 and statuses(survivors) == {"passed"}


# The broken variants build on refcheck's own layers: checked under --allow-frameworks, their rows say so.
PASSED_WITH_OWN_LAYERS = "passed using refcheck.layers (allowed by --allow-frameworks)"


def test_cli_exits_1_and_writes_every_report_with_the_error_rows(tmp_path):
    out = tmp_path / "reports"
    chosen = ["relu[7-f32]", "relu[4x5-f64]", "relu[2x3x4x4-f32]"]
    code = main(["run", "--impl", str(IMPLS / "broken_raises.py"), "--layers", "relu", "--case", ",".join(chosen),
                 "--allow-frameworks",
                 "--workers", "2", "--timeout", "30", "--out", str(out)])
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["cases.csv", "junit.xml", "plots", "results.json",
                                                      "summary.html", "summary.md"]
    frame = pd.read_csv(out / "cases.csv")
    found = {(c, t): (s, r) for c, t, s, r in zip(frame["case"], frame["tensor"], frame["status"],
                                                  frame["reason"].fillna(""))}
    assert found == {
        ("relu[7-f32]", "output"): ("error", "forward raised ValueError: relu_forward expects a batch of "
                                             "activations, got shape (7,)"),
        ("relu[7-f32]", "grad_input"): ("error", "forward raised ValueError: relu_forward expects a batch of "
                                                 "activations, got shape (7,)"),
        ("relu[4x5-f64]", "output"): ("passed", PASSED_WITH_OWN_LAYERS),
        ("relu[4x5-f64]", "grad_input"): ("passed", PASSED_WITH_OWN_LAYERS),
        ("relu[2x3x4x4-f32]", "output"): ("passed", PASSED_WITH_OWN_LAYERS),
        ("relu[2x3x4x4-f32]", "grad_input"): ("error", "backward raised RuntimeError: relu_backward has no "
                                                       "channel-wise path for 4-d activations"),
    }
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    errors = [r for r in results["records"] if r["status"] == "error"]
    assert len(errors) == 3
    for record in errors:
        trace = record["traceback"]
        assert trace.startswith("Traceback (most recent call last):")
        assert "broken_raises.py" in trace
    forward_trace = next(r["traceback"] for r in errors if r["case"] == "relu[7-f32]")
    assert "in relu_forward" in forward_trace and "ValueError: relu_forward expects a batch" in forward_trace
    suites = ET.parse(out / "junit.xml").getroot()
    flagged = {case.get("name"): [child.tag for child in case] for case in suites.iter("testcase")}
    assert flagged == {"relu[7-f32]": ["error"], "relu[4x5-f64]": [], "relu[2x3x4x4-f32]": ["error"]}
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert re.search(r"^3 of 3 cases: 1 passed, 0 failed, 2 error, 0 skipped$", summary, re.MULTILINE)
    assert re.search(r"^\| relu +\| +3 \| +1 \| +0 \| +2 \| +0 \|", summary, re.MULTILINE)


class InterruptAfter:
    """An ``on_case`` callback that behaves like Ctrl-C once ``count`` cases have finished."""

    def __init__(self, count: int, inner: Any = None) -> None:
        self.count, self.inner, self.seen = count, inner, []

    def __call__(self, case: Any, records: list[dict[str, Any]]) -> None:
        if self.inner is not None:
            self.inner(case, records)
        self.seen.append(case.id)
        if len(self.seen) == self.count:
            raise KeyboardInterrupt


def test_interrupted_run_cases_returns_the_finished_records():
    cases = plan_sweep(None, ["relu"]).cases
    assert len(cases) == 30  # 3 shapes x 5 input kinds x 2 dtypes
    stop = InterruptAfter(3)
    result = run_cases(None, cases, CheckOptions(workers=2, timeout=30), on_case=stop)
    assert result.interrupted and result.finished == 3 and result.total == 30
    assert len(stop.seen) == 3
    in_order = [case.id for case in cases if case.id in stop.seen]
    assert list(dict.fromkeys(r["case"] for r in result.records)) == in_order
    assert len(result.records) == 3 * 2 and {r["status"] for r in result.records} == {"passed"}


def test_ctrl_c_during_an_in_process_sweep_keeps_the_cases_finished_before_it():
    """With workers=0 every case runs inside ``submit``; Ctrl-C in case k must keep cases 0..k-1."""
    cases = plan_sweep(None, ["relu"]).cases
    first_interrupted = next(i for i, case in enumerate(cases) if len(case.shape_map["input"]) == 1)
    assert first_interrupted >= 3
    result = run_cases(str(IMPLS / "broken_ctrl_c.py"), cases,
                       CheckOptions(workers=0, oracle_cache=None, allow_frameworks=True))
    assert result.interrupted and result.total == len(cases)
    assert result.finished == first_interrupted
    done = [case.id for case in cases[:first_interrupted]]
    assert list(dict.fromkeys(r["case"] for r in result.records)) == done
    assert {r["status"] for r in result.records} == {"passed"}


def test_cli_returns_130_and_writes_the_partial_report_when_interrupted(tmp_path, monkeypatch):
    def interrupting_run_cases(*args: Any, on_case: Any = None, **kwargs: Any) -> Any:
        return run_cases(*args, on_case=InterruptAfter(3, on_case), **kwargs)

    monkeypatch.setattr(refcheck.execution.sweep, "run_cases", interrupting_run_cases)
    out = tmp_path / "reports"
    code = main(["run", "--layers", "relu", "--workers", "1", "--timeout", "30", "--out", str(out)])
    assert code == 130
    frame = pd.read_csv(out / "cases.csv")
    assert frame["case"].nunique() == 3 and len(frame) == 6 and statuses(frame) == {"passed"}
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["interrupted"] is True
    assert results["totals"].startswith("3 of 30 cases") and results["totals"].endswith("(interrupted)")
    assert "(interrupted)" in (out / "summary.md").read_text(encoding="utf-8")


SLOW_RELU = '''
import os
import time
import numpy as np

def relu_forward(x):
    # One marker per call, so the test knows the sweep is under way before it interrupts.
    with open(os.path.join(os.path.dirname(__file__), "calls.log"), "a") as log:
        log.write("call\\n")
    time.sleep(1.0)
    return np.maximum(x, 0), x

def relu_backward(dout, x):
    return dout * (x > 0)
'''


def _slow_run_under_way(tmp_path, new_session: bool):
    """`refcheck run` on the slow relu, returned once a few of its cases have finished, and its --out."""
    import subprocess
    import sys

    (tmp_path / "slow.py").write_text(SLOW_RELU)
    calls, out = tmp_path / "calls.log", tmp_path / "reports"
    process = subprocess.Popen([sys.executable, "-m", "refcheck", "run", "--impl", str(tmp_path / "slow.py"),
                                "--no-selfcheck", "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=new_session)
    deadline = time.time() + 120
    # Two forward calls per case (its own, and one on other inputs before its backward): a few cases done.
    while time.time() < deadline and (not calls.exists() or len(calls.read_text().split()) < 7):
        time.sleep(0.1)
    return process, out


def test_a_real_ctrl_c_exits_130_and_writes_what_finished(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, workers included."""
    import os
    import signal

    process, out = _slow_run_under_way(tmp_path, new_session=True)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "(interrupted)" in output
    frame = pd.read_csv(out / "cases.csv")
    finished = frame["case"].nunique()
    assert 0 < finished < 30  # relu has 30 cases of about a second each
    assert set(frame["status"]) == {"passed"}


def test_a_sigterm_stops_the_run_as_ctrl_c_does_and_junit_says_it_was_interrupted(tmp_path):
    """A CI job's timeout or `kill` sends SIGTERM to refcheck alone: what finished is written and
    junit.xml holds an error saying the run was interrupted (it held a green verdict of the finished
    part, or the previous run's)."""
    import os
    import signal

    process, out = _slow_run_under_way(tmp_path, new_session=False)
    os.kill(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    junit = (out / "junit.xml").read_text()
    assert "the run was interrupted" in junit and 'errors="1"' in junit
    assert 0 < pd.read_csv(out / "cases.csv")["case"].nunique() < 30


def test_the_memory_limit_cannot_be_lifted_by_the_code_under_test(tmp_path):
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(HOSTILE / "limit_raiser.py"), "--layers", "relu", "--quick", "--out", str(out),
                 "--no-plots", "--memory-limit", "300MB", "--workers", "1"])
    frame = pd.read_csv(out / "cases.csv")
    lifted = frame[frame["input_shape"] == "(7,)"]
    assert code == 1 and len(lifted) and set(lifted["status"]) == {"error"}
    assert lifted["reason"].str.contains("MemoryError").all()


def test_a_flood_of_output_stops_at_the_file_size_limit(tmp_path):
    from refcheck.execution.limits import OUTPUT_FILE_LIMIT

    out = tmp_path / "reports"
    code = main(["run", "--impl", str(HOSTILE / "output_flood.py"), "--layers", "relu", "--quick", "--out", str(out),
                 "--no-plots", "--workers", "1"])
    records = json.loads((out / "results.json").read_text())["records"]
    flooded = [r["stdout"] for r in records if r["case"] == "relu[7-near_max-f32]"]
    assert code == 0 and flooded
    left_out = [int(re.search(r"\[\.\.\. (\d+) bytes left out", text).group(1)) for text in flooded]
    assert all(100e6 < size <= OUTPUT_FILE_LIMIT for size in left_out), left_out


def test_the_workers_hold_no_pipe_to_multiprocessing_s_helper_processes(tmp_path):
    # Bytes of the code's own written into them killed the fork server (the run hung) and had the
    # resource tracker print them on the console.
    record = tmp_path / "pipes.txt"
    module = tmp_path / "pipes.py"
    module.write_text(
        "import multiprocessing.forkserver as fs, multiprocessing.resource_tracker as rt\n"
        "import numpy as np\n\n\n"
        "def relu_forward(x):\n"
        f"    open({str(record)!r}, 'w').write(repr((fs._forkserver._forkserver_alive_fd, rt._resource_tracker._fd)))\n"
        "    return np.maximum(x, 0), x\n\n\n"
        "def relu_backward(dout, cache):\n    return dout * (cache > 0)\n")
    code = main(["run", "--impl", str(module), "--layers", "relu", "--quick", "--workers", "1", "--no-plots",
                 "--out", str(tmp_path / "out")])
    assert code == 0 and record.read_text() == "(None, None)"
