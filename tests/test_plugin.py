"""The pytest plugin: real pytest sessions in empty folders, and the failure message on its own.

The sessions run in subprocesses (``runpytest_subprocess``): the plugin starts a process pool,
which must not be forked from, or left behind in, this test process. The expected case ids come
from ``plan_sweep`` here, so the tests follow the case files.
"""
from __future__ import annotations

import csv
import fnmatch
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from refcheck.cli import main as refcheck_main
from refcheck.pytest_plugin import RefcheckOptions, case_outcome, failure_message, reproduce_command
from refcheck.execution.sweep import plan_sweep

pytest_plugins = ["pytester"]

# relu'(0) taken as 1 (torch: 0): wrong exactly on the cases with exact zeros in the input.
# 1-d inputs: float32 kills the worker, float64 hangs, to check that only those cases fail.
BROKEN_RELU = """
import os
import time

import numpy as np


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    if x.ndim == 1 and x.dtype == np.float32:
        os._exit(3)
    if x.ndim == 1:
        time.sleep(600)
    return dout * (x >= 0)
"""

RELU_ONLY = """
import numpy as np


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return dout * (x > 0)
"""


def _case_ids(impl: str | None, layers: str, quick: bool = False) -> list[str]:
    return [case.id for case in plan_sweep(impl, layers, quick=quick).cases]


def _failure_section(output: str, case_id: str) -> str:
    """The text of one test's failure section in pytest's output."""
    start = output.index(f" {case_id} _")
    end = output.find("\n___", start + 1)
    return output[start:end if end != -1 else None]


def test_importing_the_plugin_loads_neither_torch_nor_pandas() -> None:
    probe = ("import sys, refcheck.pytest_plugin; "
             "print(','.join(m for m in ('torch', 'pandas', 'numpy', 'refcheck.execution.sweep') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""


def test_without_impl_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    empty = pytester.runpytest("-p", "no:cacheprovider")
    assert empty.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    pytester.makepyfile(test_plain="def test_one():\n    assert 1 + 1 == 2\n")
    plain = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    assert plain.ret == pytest.ExitCode.OK
    assert [line for line in plain.outlines if "::" in line] == ["test_plain.py::test_one"]
    assert "refcheck" not in plain.stdout.str()


def test_options_are_listed_in_their_own_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    group = text[text.index("refcheck: check numpy layer implementations"):]
    for option in ("--refcheck-impl", "--refcheck-layers", "--refcheck-cases", "--refcheck-quick",
                   "--refcheck-timeout", "--refcheck-workers"):
        assert option in group


def test_builtin_layers_pass_with_case_ids_as_test_ids(pytester: pytest.Pytester) -> None:
    expected = _case_ids(None, "relu,linear")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "--refcheck-impl", "refcheck.layers",
                                           "--refcheck-layers", "relu,linear", timeout=240)
    result.assert_outcomes(passed=len(expected))
    reported = [line.split(" PASSED")[0] for line in result.outlines if " PASSED" in line]
    layers = [case_id.split("[")[0] for case_id in expected]
    assert reported == [f"refcheck/{layer}::{case_id}" for layer, case_id in zip(layers, expected)]
    result.stdout.fnmatch_lines([f"refcheck: {len(expected)} of {len(expected)} cases for refcheck.layers"])


def test_broken_backward_fails_its_cases_with_message_junit_and_repro(pytester: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(broken_relu=BROKEN_RELU)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--refcheck-impl", "broken_relu.py",
                                           "--refcheck-layers", "relu", "--refcheck-timeout", "4",
                                           "--junitxml", "report.xml", timeout=240)
    ids = _case_ids(None, "relu")
    with_zeros = [c for c in ids if "zeros" in c and not c.startswith("relu[7-")]
    crashing = [c for c in ids if c.startswith("relu[7-") and c.endswith("f32]")]
    hanging = [c for c in ids if c.startswith("relu[7-") and c.endswith("f64]")]
    failing = with_zeros + crashing + hanging
    assert with_zeros and crashing and hanging
    result.assert_outcomes(passed=len(ids) - len(failing), failed=len(failing))
    output = result.stdout.str()

    section = _failure_section(output, "relu[4x5-zeros-f32]")
    assert "grad_input is not close to torch.autograd's float64 result (float32):" in section
    for line in (r"  Mismatched elements: * / 20 (*%)",
                 r"  Greatest absolute difference: * at index (*, *) (up to * allowed)",
                 r"  Error: * eps of float32 (torch's own float32 result: * eps; allowed: 64 eps)",
                 r"  Self-check (backward vs finite differences of own forward): ok *",
                 r"Within tolerance: output (0 eps)"):
        assert any(fnmatch.fnmatchcase(text, line) for text in section.splitlines()), line
    command = "refcheck run --impl broken_relu.py --layers relu --case 'relu[4x5-zeros-f32]' --timeout 4"
    assert section.rstrip().endswith(command)
    assert "worker died: the process running the case exited with code 3" in _failure_section(output, crashing[0])
    assert "timeout: the case did not finish within 4 s" in _failure_section(output, hanging[0])

    suite = ET.parse(pytester.path / "report.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == ids
    assert {case.get("classname") for case in cases} == {"refcheck.relu"}
    failed = {case.get("name"): case.find("failure") for case in cases if case.find("failure") is not None}
    assert sorted(failed) == sorted(failing)
    assert "Mismatched elements" in failed["relu[4x5-zeros-f32]"].text
    assert command in failed["relu[4x5-zeros-f32]"].text

    # The printed command reproduces the failure on its own (in this process: no pool).
    monkeypatch.chdir(pytester.path)
    argv = shlex.split(command)[2:] + ["--out", str(pytester.path / "repro"), "--workers", "0"]
    assert refcheck_main(["run", *argv]) == 1
    assert "relu[4x5-zeros-f32],grad_input" in (pytester.path / "repro" / "cases.csv").read_text()


def test_missing_layer_asked_for_is_a_usage_error_naming_what_the_module_has(pytester: pytest.Pytester) -> None:
    # A layer named in --refcheck-layers that the module lacks is an error before anything runs
    # (it used to be skipped, which let a misspelled function go green).
    pytester.makepyfile(relu_only=RELU_ONLY, test_other="def test_other():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--refcheck-impl", "relu_only.py",
                                           "--refcheck-layers", "relu,linear", "--refcheck-quick", timeout=240)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*refcheck: --refcheck-layers linear: *relu_only.py has no linear "
                                 "(it defines: relu_backward, relu_forward)*"])


def test_bad_options_are_reported_under_their_own_names(pytester: pytest.Pytester) -> None:
    unknown = pytester.runpytest("-p", "no:cacheprovider", "--refcheck-impl", "refcheck.layers",
                                 "--refcheck-layers", "relu,nosuch")
    assert unknown.ret == pytest.ExitCode.INTERRUPTED
    unknown.stdout.fnmatch_lines(["refcheck: --refcheck-layers: unknown value 'nosuch'; allowed: *"])
    zero = pytester.runpytest("--refcheck-impl", "refcheck.layers", "--refcheck-timeout", "0")
    assert zero.ret == pytest.ExitCode.USAGE_ERROR
    zero.stderr.fnmatch_lines(["*--refcheck-timeout: expected a positive number, got '0'"])


def _record(tensor: str, status: str, **fields: object) -> dict[str, object]:
    return {"layer": "relu", "case": "relu[4x5-f32]", "tensor": tensor, "dtype": "float32", "status": status,
            "reason": "", **fields}


def test_message_derives_the_allowed_difference_and_prefers_counted_mismatches() -> None:
    # scale = max_abs / (error_eps * eps); allowed = 64 eps * scale = 0.5 * 64 / 1e6.
    failed = _record("grad_input", "failed", max_abs_error=0.5, error_eps=1e6, tolerance_eps=64.0,
                     torch_error_eps=0.5, worst_index="(1, 2)", mismatched=3, total=20,
                     reason="grad_input: mismatched elements 9 / 99 (9.1%); greatest difference 0.5")
    passed = _record("output", "passed", error_eps=0.0, tolerance_eps=64.0)
    message = failure_message([passed, failed], "refcheck run --case 'relu[4x5-f32]'")
    lines = message.splitlines()
    assert lines[0] == "grad_input mismatched 3 / 20 elements (1e+06 eps > 64 allowed)"
    assert "  Mismatched elements: 3 / 20 (15.0%)" in lines
    assert "  Greatest absolute difference: 0.5 at index (1, 2) (up to 3.2e-05 allowed)" in lines
    assert "  Error: 1e+06 eps of float32 (torch's own float32 result: 0.5 eps; allowed: 64 eps)" in lines
    assert "Within tolerance: output (0 eps)" in lines
    assert lines[-2:] == ["Reproduce this case alone:", "  refcheck run --case 'relu[4x5-f32]'"]


def test_message_states_other_failures_and_reports_an_exception_once() -> None:
    shape = _record("output", "failed", reason="output shape (4, 4) != expected (4, 5)")
    raised = [_record(name, "error", reason="backward raised ValueError: boom", traceback="Traceback\nValueError: boom")
              for name in ("grad_input", "grad_weight")]
    message = failure_message([shape, *raised], "cmd")
    assert message.splitlines()[0] == ("output shape (4, 4) != expected (4, 5); "
                                       "error: backward raised ValueError: boom")
    assert message.splitlines()[2:4] == ["output (float32):", "  output shape (4, 4) != expected (4, 5)"]
    assert message.count("grad_input, grad_weight: error: backward raised ValueError: boom") == 1
    assert message.splitlines().count("  ValueError: boom") == 1
    assert "Mismatched elements" not in message


def test_outcome_of_a_case() -> None:
    skipped = [_record(t, "skipped", reason="not implemented: m has no relu") for t in ("output", "grad_input")]
    assert case_outcome(skipped) == ("skipped", "not implemented: m has no relu")
    assert case_outcome([_record("output", "passed"), _record("grad_input", "passed")]) == ("passed", "")
    status, _ = case_outcome([_record("output", "passed"), _record("grad_input", "error", reason="timeout")])
    assert status == "failed"


def test_reproduce_command_quotes_the_id_and_names_non_default_settings() -> None:
    plain = RefcheckOptions(impl="my impl.py")
    assert reproduce_command(plain, "conv2d", "conv2d[s2-p1-d2-g1-k3x3-2x4x9x7-f32]") == (
        "refcheck run --impl 'my impl.py' --layers conv2d --case 'conv2d[s2-p1-d2-g1-k3x3-2x4x9x7-f32]'")
    custom = RefcheckOptions(impl="impl.py", cases="my_cases", quick=True, timeout=5.0)
    assert reproduce_command(custom, "relu", "relu[7-f32]").endswith("--cases my_cases --quick --timeout 5")
    newer = RefcheckOptions(impl="impl.py", dtype="float64", seed=3, map="m.toml", forward_only=True,
                            shared={"allow_frameworks": True})
    assert reproduce_command(newer, "relu", "relu[7-f64]") == (
        "refcheck run --impl impl.py --layers relu --case 'relu[7-f64]' --dtype float64 --seed 3 --map m.toml "
        "--forward-only --allow-frameworks")


# relu'(0) taken as 1, under names only a mapping file can tell, in a module that imports torch
# (so its cases are checked only with --allow-frameworks).
MAPPED_TORCH_RELU = """
import numpy as np
import torch  # imported, not used: enough to need --allow-frameworks


def my_relu(x):
    return np.maximum(x, 0), x


def my_relu_grad(dout, x):
    return dout * (x >= 0)
"""


def test_the_printed_command_repeats_every_option_that_shapes_the_case_and_fails_the_same_way(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(mapped_relu=MAPPED_TORCH_RELU)
    (pytester.path / "relu.toml").write_text('[relu]\nfunction = "my_relu"\nbackward = "my_relu_grad"\n',
                                             encoding="utf-8")
    options = ["--refcheck-impl", "mapped_relu.py", "--refcheck-layers", "relu", "--refcheck-map", "relu.toml",
               "--refcheck-allow-frameworks", "--refcheck-dtype", "float64", "--refcheck-quick",
               "--refcheck-timeout", "30"]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *options, timeout=240)
    output = result.stdout.str()
    failing = [line.split("::", 1)[1].split(" ")[0] for line in output.splitlines()
               if line.startswith("FAILED refcheck/relu::")]
    assert failing and all("zeros" in case and case.endswith("-f64]") for case in failing)
    case = failing[0]
    section = _failure_section(output, case)
    lines = section.splitlines()
    command = lines[lines.index("Reproduce this case alone:") + 1].strip()
    assert command == (f"refcheck run --impl mapped_relu.py --layers relu --case '{case}' --dtype float64 --quick "
                       "--map relu.toml --allow-frameworks --timeout 30")
    mismatched = next(line for line in section.splitlines() if "Mismatched elements:" in line).split(":")[1].split("(")[0]

    monkeypatch.chdir(pytester.path)
    argv = shlex.split(command)[2:] + ["--out", str(pytester.path / "repro"), "--workers", "0", "--no-plots"]
    assert refcheck_main(["run", *argv]) == 1
    rows = list(csv.DictReader((pytester.path / "repro" / "cases.csv").read_text(encoding="utf-8").splitlines()))
    assert {row["case"] for row in rows} == {case}
    by_tensor = {row["tensor"]: row for row in rows}
    assert by_tensor["output"]["status"] == "passed" and by_tensor["grad_input"]["status"] == "failed"
    # The same failure: the values of grad_input, with the same count of mismatched elements (not the
    # framework refusal a rerun without --allow-frameworks would give, nor "not implemented" without --map).
    assert by_tensor["grad_input"]["reason"].startswith(f"grad_input: mismatched elements {mismatched.strip()} (")
    assert by_tensor["grad_input"]["frameworks"] == "torch"
