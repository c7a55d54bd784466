"""The report files of a failing run: plots written and embedded, junit contents, the job summary,
re-rendering from results.json, run-to-run diffs, case figures and byte-identical reruns."""
from __future__ import annotations

import base64
import json
import math
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from refcheck.cli import main
from refcheck.report import load_results, write_reports
from refcheck.report.junit import junit_xml

ROOT = Path(__file__).resolve().parents[1]
FLIPPED = str(ROOT / "tests" / "impls_diagnose" / "conv_true_convolution.py")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("flipped") / "reports"
    code = main(["run", "--impl", FLIPPED, "--layers", "conv2d", "--quick", "--workers", "0", "--out", str(out),
                 "--allow-frameworks"])
    assert code == 1
    return out


def test_plots_are_written_and_embedded_in_the_page(failing_run):
    plots = sorted(p.name for p in (failing_run / "plots").iterdir())
    assert plots == ["conv2d.png", "overview.png"]
    page = (failing_run / "summary.html").read_text()
    embedded = [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    for name in plots:  # the page holds the very bytes of each plot file
        assert (failing_run / "plots" / name).read_bytes() in embedded
    assert all(data.startswith(PNG) for data in embedded)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    markdown = (failing_run / "summary.md").read_text()
    assert "](plots/overview.png)" in markdown and "](plots/conv2d.png)" in markdown


def test_failing_groups_get_a_case_figure_linked_from_the_page(failing_run):
    figures = list((failing_run / "cases").iterdir())
    assert figures and all(f.read_bytes().startswith(PNG) for f in figures)
    page = (failing_run / "summary.html").read_text()
    for figure in figures:
        assert f'href="cases/{figure.name}"' in page


def test_summary_md_lists_the_failing_groups_with_their_rerun_commands(failing_run):
    markdown = (failing_run / "summary.md").read_text()
    section = markdown.split("## Failing cases")[1]
    frame = pd.read_csv(failing_run / "cases.csv")
    count = frame[frame["status"] == "failed"]["case"].nunique()
    assert f"### conv2d: kernel flipped ({count} cases, failed)" in section
    assert f"refcheck run --impl {FLIPPED} --layers conv2d --case 'conv2d[" in section
    assert not re.search(r"\d+\.\d s\b", markdown)  # no times in the tracked summary


def test_junit_has_times_the_reason_as_message_and_traceback_and_output_in_the_body():
    records = [
        {"layer": "relu", "case": "relu[a]", "tensor": "output", "status": "passed", "reason": "", "duration_s": 0.25},
        {"layer": "relu", "case": "relu[a]", "tensor": "grad_input", "status": "error", "duration_s": 0.25,
         "reason": "backward raised KeyError: 'w'", "traceback": "Traceback (most recent call last):\n  KeyError: 'w'",
         "stdout": "hello from the layer", "stderr": "a warning"},
        {"layer": "relu", "case": "relu[b]", "tensor": "output", "status": "failed", "duration_s": 1.5,
         "reason": "output shape (2,) != expected (3,)", "diagnosis": "NHWC instead of NCHW: details"},
        {"layer": "relu", "case": "relu[c]", "tensor": "output", "status": "skipped", "reason": "unsupported: x",
         "duration_s": math.nan},
    ]
    suite = ET.fromstring(junit_xml(records)).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("3", "1", "1", "1")
    assert float(suite.get("time")) == pytest.approx(1.75)
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert float(cases["relu[a]"].get("time")) == 0.25 and float(cases["relu[b]"].get("time")) == 1.5
    error = cases["relu[a]"].find("error")
    assert error.get("message") == "backward raised KeyError: 'w'"
    for text in ("Traceback (most recent call last)", "hello from the layer", "a warning", "--- stdout ---"):
        assert text in error.text
    failure = cases["relu[b]"].find("failure")
    assert failure.get("message") == "output shape (2,) != expected (3,)"
    assert "diagnosis: NHWC instead of NCHW" in failure.text
    assert cases["relu[c]"].find("skipped").get("message") == "unsupported: x"


def test_junit_of_a_real_run_has_per_case_times(failing_run):
    testcases = ET.parse(failing_run / "junit.xml").getroot().findall(".//testcase")
    assert testcases and all(float(t.get("time")) > 0 for t in testcases)
    assert any(t.find("failure") is not None for t in testcases)


def test_step_summary_is_appended_when_github_sets_it(tmp_path, monkeypatch):
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    for _ in range(2):
        assert main(["run", "--layers", "relu", "--quick", "--workers", "0", "--out", str(tmp_path / "r"),
                     "--no-plots"]) == 0
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert text.count("# refcheck summary: refcheck.layers") == 2
    assert "| relu " in text and "![" not in text  # images are relative to the report: left out


def test_report_re_renders_the_same_files_from_results_json(failing_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(failing_run, copy)
    names = ["summary.md", "summary.html", "junit.xml", "cases.csv", "plots/overview.png", "plots/conv2d.png"]
    before = {name: (copy / name).read_bytes() for name in names}
    for name in names:
        (copy / name).unlink()
    assert main(["report", str(copy)]) == 1  # the run failed: so does its report
    for name in names:
        assert (copy / name).read_bytes() == before[name], name


def test_identical_runs_diff_clean_and_a_planted_regression_exits_1(failing_run, tmp_path, capsys):
    assert main(["diff", str(failing_run), str(failing_run)]) == 0
    assert "regression: 0, fixed: 0, error grew: 0, added: 0, removed: 0" in capsys.readouterr().out
    records, meta = load_results(failing_run)
    failing = {r["case"] for r in records if r["status"] != "passed"}
    passed = next(r["case"] for r in records if r["case"] not in failing)
    grown = next(r["case"] for r in records if r["status"] == "failed" and r["tensor"] == "output")
    changed = []
    for r in records:
        r = dict(r)
        if r["case"] == passed and r["tensor"] == "output":
            r.update(status="failed", reason="output: planted", error_eps=r["tolerance_eps"] * 2)
        if r["case"] == grown and r["tensor"] == "output":
            r.update(error_eps=r["error_eps"] * 20)
        changed.append(r)
    changed.append({**records[0], "case": "conv2d[new]"})
    write_reports(tmp_path / "new", changed, meta, plots=False)
    assert main(["diff", str(failing_run), str(tmp_path / "new"), "--md"]) == 1
    out = capsys.readouterr().out
    assert "regression: 1, fixed: 0, error grew: 1, added: 1, removed: 0" in out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert any("regression" in row and passed in row and "planted" in row for row in rows)
    assert any("error grew" in row and grown in row for row in rows)
    # The other way round, the planted failure is a fix and nothing regressed.
    assert main(["diff", str(tmp_path / "new"), str(failing_run)]) == 0
    assert "regression: 0, fixed: 1, error grew: 0, added: 0, removed: 1" in capsys.readouterr().out


def test_diff_of_a_folder_without_results_is_a_usage_error(tmp_path, capsys):
    assert main(["diff", str(tmp_path), str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_show_draws_the_failing_tensors_of_one_case(failing_run, tmp_path, capsys):
    frame = pd.read_csv(failing_run / "cases.csv")
    case_id = frame[frame["status"] == "failed"]["case"].iloc[0]
    assert main(["show", case_id, "--impl", FLIPPED, "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "output: failed" in out and "failing tensors: output" in out
    figures = list((tmp_path / "cases").iterdir())
    assert len(figures) == 1 and figures[0].read_bytes().startswith(PNG)
    assert main(["show", case_id, "--out", str(tmp_path)]) == 0  # the built-in layers pass it
    assert "every tensor passes" in capsys.readouterr().out


def test_case_arrays_give_the_implementations_results_and_torchs_reference(failing_run):
    import numpy as np

    from refcheck.cli.report_commands import _find_case
    from refcheck.execution.case_arrays import case_arrays

    case = _find_case(None, "relu[4x5-f32]", None, 0)
    results, reference = case_arrays(None, case)
    assert set(results) == set(reference) == {"output", "grad_input"}
    assert results["output"].dtype == np.float32 and reference["output"].dtype == np.float64
    np.testing.assert_allclose(results["output"], reference["output"], rtol=1e-6)
    # The flipped kernel's output is the reference's with the kernel rotated by 180 degrees, not the reference.
    frame = pd.read_csv(failing_run / "cases.csv")
    failed = frame[(frame["status"] == "failed") & (frame["tensor"] == "output")].iloc[0]
    case = _find_case(FLIPPED, failed["case"], None, 0)
    results, reference = case_arrays(FLIPPED, case)
    error = np.abs(results["output"] - reference["output"]).max()
    assert error == pytest.approx(failed["max_abs_error"], rel=1e-6)


def test_the_built_in_report_is_byte_identical_run_to_run(tmp_path):
    for name in ("a", "b"):
        assert main(["run", "--layers", "relu,max_pool2d", "--quick", "--workers", "0", "--out",
                     str(tmp_path / name)]) == 0
    for name in ("summary.md", "plots/overview.png", "plots/relu.png", "plots/max_pool2d.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    payload = json.loads((tmp_path / "a" / "results.json").read_text())
    assert payload["duration_s"] > 0  # the time lives in results.json (and on the console)


def test_tracked_reports_hold_no_times_or_paths():
    summary = (ROOT / "reports" / "summary.md").read_text()
    assert not re.search(r"\d+\.\d+ s\b", summary) and "/work/" not in summary and "/home/" not in summary
    assert "](plots/overview.png)" in summary and (ROOT / "reports" / "plots" / "overview.png").is_file()


@pytest.mark.parametrize("magnitude", [1.7e308, 3e-320])
def test_a_case_figure_draws_values_near_float64s_limits(magnitude):
    """near_max inputs give arrays near float64's maximum (their difference overflows) and tiny
    ones subnormals: the colour bars' ticks cannot be computed on them as they are, so the figure
    is drawn scaled (named in the title) instead of failing."""
    import numpy as np

    from refcheck.report.plots import case_figure

    rng = np.random.default_rng(0)
    reference = {"output": rng.uniform(-1, 1, (2, 3, 4, 5)) * magnitude}
    results = {"output": -reference["output"]}
    png = case_figure("flatten[near-limits]", results, reference, ["output"], {"output": (0, 0, 0, 0)})
    assert png.startswith(b"\x89PNG") and len(png) > 1000


NHWC_TWICE_BIASED = '''
from refcheck.layers import conv2d_backward as _backward, conv2d_forward as _forward


def my_conv(x, w, b, *, stride, padding, dilation, groups):
    """NHWC activations and (kh, kw, C, F) kernels, as the mapping says; the bias is added twice."""
    out, cache = _forward(x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1), b, stride=stride, padding=padding,
                          dilation=dilation, groups=groups)
    if b is not None:
        out = out + b[None, :, None, None]
    return out.transpose(0, 2, 3, 1), cache


def my_conv_back(dout, cache):
    dx, dw, db = _backward(dout.transpose(0, 3, 1, 2), cache)
    return dx.transpose(0, 2, 3, 1), dw.transpose(2, 3, 1, 0), db
'''


def test_the_figures_of_a_mapped_implementation_run_it_as_its_mapping_says(tmp_path, capsys):
    # The figure of a failing case, and `refcheck show`, ran the code without its mapping: "no figure".
    code = tmp_path / "mylayers.py"
    code.write_text(NHWC_TWICE_BIASED, encoding="utf-8")
    mapping = tmp_path / "map.toml"
    mapping.write_text('[conv2d]\nfunction = "my_conv"\nbackward = "my_conv_back"\nlayout = "NHWC"\n'
                       'weight_layout = "(kh, kw, C, F)"\n', encoding="utf-8")
    out = tmp_path / "reports"
    assert main(["run", "--impl", str(code), "--map", str(mapping), "--layers", "conv2d", "--quick",
                 "--out", str(out)]) == 1
    assert "no figure" not in capsys.readouterr().out
    figures = list((out / "cases").iterdir())
    assert len(figures) == 1 and figures[0].read_bytes().startswith(PNG)
    frame = pd.read_csv(out / "cases.csv")
    case_id = frame[frame["status"] == "failed"]["case"].iloc[0]
    assert main(["show", case_id, "--impl", str(code), "--map", str(mapping), "--out", str(tmp_path / "shown")]) == 1
    printed = capsys.readouterr().out
    assert "output: failed" in printed and "grad_weight: passed" in printed and "figure:" in printed


def test_show_of_a_case_whose_forward_raises_says_what_it_raised_where(tmp_path, capsys):
    code = tmp_path / "raising.py"
    code.write_text("import numpy as np\n\n\ndef relu_forward(x):\n    raise ValueError('no relu yet')\n\n\n"
                    "def relu_backward(dout, cache):\n    return dout\n")
    assert main(["show", "relu[4x5-f32]", "--impl", str(code), "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "relu[4x5-f32]: error: forward raised ValueError: no relu yet" in out
    assert f'File "{code}", line 5, in relu_forward' in out


def test_a_folder_where_a_report_goes_is_replaced_and_a_failed_write_leaves_no_older_report(tmp_path, monkeypatch):
    # Code under test made cases.csv a folder and planted a passing junit.xml: the rename of
    # cases.csv failed, and the planted junit.xml was left as the run's verdict.
    import os

    from refcheck.report.files import write_atomically

    (tmp_path / "cases.csv").mkdir()
    (tmp_path / "cases.csv" / "inside").write_text("x")
    (tmp_path / "junit.xml").write_text("<planted passing verdict/>")
    written = write_atomically(tmp_path, {"cases.csv": "a,b\n", "junit.xml": "<real/>"})
    assert (tmp_path / "cases.csv").read_text() == "a,b\n" and written["junit.xml"].read_text() == "<real/>"

    (tmp_path / "junit.xml").write_text("<planted passing verdict/>")
    real_replace = os.replace

    def failing_replace(source, target):
        if str(target).endswith("cases.csv"):
            raise OSError("the disk is full")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_atomically(tmp_path, {"cases.csv": "c,d\n", "junit.xml": "<real/>"})
    assert not (tmp_path / "junit.xml").exists() and not (tmp_path / "cases.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
