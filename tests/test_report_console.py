"""What a person reads on the console: the per-layer table at 80 columns, failure groups with the
worst case's full id, its reason and a rerun command that reproduces exactly that case."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
from helpers import adapter_skip_source

ROOT = Path(__file__).resolve().parents[1]


def refcheck(*args: str, cwd: Path = ROOT, columns: int = 80) -> subprocess.CompletedProcess:
    """refcheck in a fresh process, piped (as in CI logs), with the given terminal width."""
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run([sys.executable, "-m", "refcheck", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def rerun_lines(stdout: str) -> list[str]:
    return [line.split("rerun: ", 1)[1] for line in stdout.splitlines() if line.startswith("  rerun: ")]


def test_failure_groups_name_the_worst_case_and_its_rerun_reproduces_it(tmp_path):
    first = refcheck("run", "--impl", "tests/impls/broken_raises.py", "--layers", "conv2d,relu", "--quick", "--allow-frameworks",
                     "--out", str(tmp_path / "full"))
    assert first.returncode == 1
    out = first.stdout
    frame = pd.read_csv(tmp_path / "full" / "cases.csv")
    failing = frame[frame["status"].isin(["failed", "error"])]
    # One group per (layer, cause), with the count of cases it holds.
    relu = failing[failing["layer"] == "relu"]
    for stage, error in (("forward", "ValueError"), ("backward", "RuntimeError")):
        count = relu[relu["reason"].str.contains(f"{stage} raised {error}")]["case"].nunique()
        assert count >= 1
        assert f"relu: {stage} raised {error}, {count} case{'' if count == 1 else 's'} (error)" in out
    conv_count = failing[failing["layer"] == "conv2d"]["case"].nunique()
    assert f"conv2d: backward raised NotImplementedError, {conv_count} cases (error)" in out
    # The table fits 80 columns; ids and commands are never cut (whole on their own lines).
    table = out.split("failing cases:")[0].splitlines()
    assert all(len(line) <= 80 for line in table), max(table, key=len)
    worst_ids = [line.split("worst: ", 1)[1] for line in out.splitlines() if line.startswith("  worst: ")]
    assert len(worst_ids) == 3 and set(worst_ids) <= set(failing["case"])
    commands = rerun_lines(out)
    assert len(commands) == 3
    for case_id, command in list(zip(worst_ids, commands))[1:]:  # a relu case and a conv2d case
        words = shlex.split(command)
        assert words[:2] == ["refcheck", "run"] and words[words.index("--case") + 1] == case_id
        rerun = refcheck(*words[1:], "--out", str(tmp_path / "rerun"))
        assert rerun.returncode == 1, rerun.stderr
        again = json.loads((tmp_path / "rerun" / "results.json").read_text())["records"]
        assert {r["case"] for r in again} == {case_id}
        before = frame[frame["case"] == case_id].set_index("tensor")
        for record in again:  # the same tensors fail the same way
            assert record["status"] == before.loc[record["tensor"], "status"]
            assert (record["reason"] or "") == (before.loc[record["tensor"], "reason"]
                                                if isinstance(before.loc[record["tensor"], "reason"], str) else "")


def test_a_diagnosed_failure_groups_by_its_diagnosis_and_reruns_failing(tmp_path):
    result = refcheck("run", "--impl", "tests/impls_diagnose/conv_stride_ignored.py", "--layers", "conv2d", "--allow-frameworks",
                      "--quick", "--dtype", "float64", "--out", str(tmp_path / "a"), "--no-plots")
    assert result.returncode == 1
    heads = [line for line in result.stdout.splitlines() if line.startswith("conv2d: ")]
    # Every case is explained by one mistake: one group, whatever the stride of each case.
    failing = pd.read_csv(tmp_path / "a" / "cases.csv").query("status == 'failed'")["case"].nunique()
    assert heads == [f"conv2d: stride ignored in the backward, {failing} cases (failed)"]
    assert "  diagnosis: stride ignored in the backward: dout must be dilated" in result.stdout
    command = rerun_lines(result.stdout)[0]
    rerun = refcheck(*shlex.split(command)[1:], "--out", str(tmp_path / "b"), "--no-plots")
    assert rerun.returncode == 1
    assert "conv2d: stride ignored in the backward, 1 case (failed)" in rerun.stdout


def test_only_a_screenful_of_groups_by_default_and_all_with_verbose(tmp_path):
    from refcheck.report.console import GROUPS_SHOWN, make_console, print_failures
    from refcheck.report.groups import failure_groups

    records = [{"layer": f"layer{i}", "case": f"layer{i}[{'x' * 120}]", "tensor": "output", "status": "failed",
                "reason": f"output shape (1,) != expected ({i},)", "dtype": "float32"} for i in range(10)]
    groups = failure_groups(records, {"impl": "my.py"})
    console = make_console()
    for verbose, shown in ((False, GROUPS_SHOWN), (True, 10)):
        with console.capture() as captured:
            print_failures(console, groups, verbose=verbose)
        text = captured.get()
        assert text.count("  rerun: refcheck run --impl my.py") == shown
        assert all(f"layer{i}[{'x' * 120}]" in text for i in range(shown))  # long ids whole
        assert ("-v to list all" in text) == (not verbose)


PARTLY_UNSUPPORTED = adapter_skip_source() + """
from refcheck.layers import conv2d_backward
from refcheck.layers import conv2d_forward as _forward


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    if tuple(dilation) != (1, 1):
        skip("no dilation here")
    if groups != 1:
        skip("no groups here")
    return _forward(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
"""


def test_skip_reasons_are_summarised_once_per_layer(tmp_path):
    impl = tmp_path / "partly.py"
    impl.write_text(PARTLY_UNSUPPORTED)
    result = refcheck("run", "--impl", str(impl), "--layers", "conv2d", "--quick", "--allow-frameworks",
                      "--out", str(tmp_path), "--no-plots")
    frame = pd.read_csv(tmp_path / "cases.csv")
    skipped = frame[frame["status"] == "skipped"].groupby("case")["reason"].first()
    assert len(skipped) > 1
    section = result.stdout.split(f"skipped cases: {len(skipped)}")[1].split("coverage:")[0]
    lines = [line for line in section.splitlines() if line.strip()]
    assert all(line.startswith("  conv2d: ") for line in lines)
    reasons = {reason.split("; case needs")[0] for reason in skipped}
    assert len(lines) == len(reasons)  # each distinct reason once, with its count
    counts = sum(int(line.split()[1]) for line in lines)
    assert counts == len(skipped)


def test_the_progress_line_counts_cases_as_the_closing_totals_do():
    """A case with an errored and a failed tensor is one error (as '... 1 failed, 1 error' counts
    it), not both a failure and an error."""
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from refcheck.report.console import progress_bar

    stream = io.StringIO()
    with progress_bar(Console(file=stream, width=120, force_terminal=False), 2) as advance:
        advance(SimpleNamespace(layer="conv2d"), [{"status": "failed"}, {"status": "error"}])
        advance(SimpleNamespace(layer="relu"), [{"status": "failed"}, {"status": "passed"}])
    assert "failed 1  error 1  (at relu)" in stream.getvalue()


def test_prose_lines_wrap_at_words_indented_and_without_trailing_spaces():
    """Reasons, skip reasons, coverage and 'checked as' lines at a narrow width: wrapped at words
    (never inside one), continuation lines indented under their first, no line padded to the width."""
    import io

    from rich.console import Console

    from refcheck.report.console import print_failures, print_prose
    from refcheck.report.groups import FailureGroup

    stream = io.StringIO()
    console = Console(file=stream, width=60, force_terminal=False)
    text = ("cross_entropy: 1 unsupported: SoftmaxWithLoss takes no weight keyword; this case has class "
            "weights and more words to wrap")
    print_prose(console, text, indent=2)
    group = FailureGroup("conv2d", "stride ignored", "failed", 3, "conv2d[s2]", "grad_input",
                         "grad_input: mismatched elements 432 / 432 (100.0%); greatest difference 4.53 at index "
                         "(0, 3, 3, 0)", "stride ignored in the backward: dout must be dilated by the stride",
                         1e15, "refcheck run --layers conv2d --case 'conv2d[s2]'")
    print_failures(console, [group])
    lines = stream.getvalue().splitlines()
    assert not [line for line in lines if line != line.rstrip()]
    prose = lines[:3]
    assert prose[0].startswith("  cross_entropy: 1 unsupported") and all(line.startswith("      ") for line in prose[1:])
    assert all(len(line) <= 60 for line in lines if "rerun:" not in line and "worst:" not in line)
    assert " ".join(line.strip() for line in prose) == text  # nothing cut inside a word


def test_self_check_disagreements_are_said_on_the_console():
    """A tensor that passes against torch but whose backward disagrees with its own forward (a
    forward memoised on x alone) is said, not only written in a column nobody reads."""
    import io

    from rich.console import Console

    from refcheck.report.console import print_selfcheck

    stream = io.StringIO()
    records = [{"case": "conv2d[a]", "tensor": "grad_weight", "status": "passed",
                "selfcheck": "backward disagrees with own forward", "selfcheck_error": 1.0},
               {"case": "rnn[c]", "tensor": "grad_hx", "status": "passed",       # a finite difference's noise
                "selfcheck": "backward disagrees with own forward", "selfcheck_error": 1.6e-5},
               {"case": "conv2d[a]", "tensor": "output", "status": "passed", "selfcheck": None},
               {"case": "conv2d[b]", "tensor": "grad_weight", "status": "passed", "selfcheck": "ok"}]
    print_selfcheck(Console(file=stream, width=200, force_terminal=False), records)
    assert "disagrees with its own forward on 1 tensor(s) of 1 case(s), 1 of them passing" in stream.getvalue()
    quiet = io.StringIO()
    print_selfcheck(Console(file=quiet, width=200, force_terminal=False), records[1:])
    assert quiet.getvalue() == ""


def test_the_self_check_line_says_which_side_is_wrong():
    """Disagreeing gradients that fail against torch, or pass where the output fails, are a wrong
    backward or a wrong forward: the hidden-state question was asked of every failing run."""
    import io

    from rich.console import Console

    from refcheck.report.console import print_selfcheck

    def said(records):
        stream = io.StringIO()
        print_selfcheck(Console(file=stream, width=300, force_terminal=False), records)
        return stream.getvalue()

    disagrees = {"selfcheck": "backward disagrees with own forward", "selfcheck_error": 1.0}
    wrong_backward = [{"case": "a", "tensor": "output", "status": "passed"},
                      {"case": "a", "tensor": "grad_input", "status": "failed", **disagrees}]
    wrong_forward = [{"case": "b", "tensor": "output", "status": "failed"},
                     {"case": "b", "tensor": "grad_input", "status": "passed", **disagrees}]
    assert "all of them failing against torch too: the backward is not the derivative" in said(wrong_backward)
    assert "1 of them passing against torch in cases whose output fails: the forward is what is wrong" \
        in said(wrong_forward)
    for text in (said(wrong_backward), said(wrong_forward)):
        assert "cache keyed on x alone" not in text


def test_a_case_whose_forward_is_diagnosed_wrong_is_grouped_by_the_forward_s_mistake():
    """A dropout that never scales fails its output (diagnosed) and its gradient, by more: the
    case was grouped by the gradient's diagnosis, which read as if the forward were right."""
    from refcheck.report.groups import failure_groups

    def row(case, tensor, ratio, diagnosis):
        return {"layer": "dropout", "case": case, "tensor": tensor, "status": "failed", "reason": "values",
                "error_eps": ratio, "tolerance_eps": 1.0, "diagnosis": diagnosis}

    forward = "mask applied without scaling: scale by 1 / (1 - p)"
    backward = "no scaling in the backward: as in the forward"
    records = [row("dropout[a]", "output", 5.0, forward), row("dropout[a]", "grad_input", 9.0, backward),
               row("dropout[b]", "output", 0.5, None) | {"status": "passed"},
               row("dropout[b]", "grad_input", 9.0, backward)]
    groups = {group.cause: group.count for group in failure_groups(records)}
    assert groups == {"mask applied without scaling": 1, "no scaling in the backward": 1}
