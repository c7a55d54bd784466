"""The command line: exit codes, usage and case-file errors, and the report files it writes."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from refcheck.cli import main

BROKEN_RELU = '''
import numpy as np

def relu_forward(x):
    return np.maximum(x, 0), x

def relu_backward(dout, x):
    return dout * (x >= 0)  # wrong at exact zeros: torch's relu'(0) is 0
'''


def run(tmp_path, *args):
    out = tmp_path / "reports"
    code = main(["run", "--out", str(out), "--workers", "0", *args])
    return code, out


def test_built_in_layers_pass_with_exit_0_and_every_report(tmp_path, capsys):
    code, out = run(tmp_path, "--layers", "relu,linear,max_pool2d", "--quick")
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["cases.csv", "junit.xml", "plots", "results.json",
                                                      "summary.html", "summary.md"]
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["linear.png", "max_pool2d.png", "overview.png",
                                                                 "relu.png"]
    printed = capsys.readouterr().out
    assert "coverage: complete" in printed and "max_pool2d" in printed


def test_cases_csv_has_the_documented_columns(tmp_path):
    code, out = run(tmp_path, "--layers", "conv2d", "--quick", "--dtype", "float32")
    assert code == 0
    frame = pd.read_csv(out / "cases.csv")
    for column in ("layer", "case", "tensor", "dtype", "status", "reason", "max_abs_error", "max_rel_error",
                   "error_eps", "torch_error_eps", "tolerance_eps", "stride", "padding", "dilation", "groups",
                   "input_shape", "weight_shape", "bias_shape"):
        assert column in frame.columns, column
    assert set(frame["tensor"]) == {"output", "grad_input", "grad_weight", "grad_bias"}
    assert set(frame["dtype"]) == {"float32"}
    assert set(frame["status"]) == {"passed"}
    strided = frame[frame["case"].str.contains(r"\[s2x1-")]
    assert not strided.empty and set(strided["stride"]) == {"(2, 1)"}
    assert frame["case"].str.match(r"^conv2d\[s[\dx]+-p[\w\dx]+-d[\dx]+-g\d+-k\dx\d").all()


def test_summary_junit_and_json_agree_with_cases_csv(tmp_path):
    code, out = run(tmp_path, "--layers", "relu,sigmoid", "--quick")
    frame = pd.read_csv(out / "cases.csv")
    cases = frame["case"].nunique()
    suites = ET.parse(out / "junit.xml").getroot()
    testcases = suites.findall(".//testcase")
    assert len(testcases) == cases
    assert {t.get("name") for t in testcases} == set(frame["case"])
    payload = json.loads((out / "results.json").read_text())
    assert len(payload["records"]) == len(frame)
    assert {row["layer"] for row in payload["summary"]} == {"relu", "sigmoid"}
    summary = (out / "summary.md").read_text().split("## Coverage")[0]
    assert summary.count("| relu ") == 1 and summary.count("| sigmoid ") == 1
    assert "<table" in (out / "summary.html").read_text()


def test_failing_implementation_exits_1_and_names_the_failure(tmp_path):
    impl = tmp_path / "broken.py"
    impl.write_text(BROKEN_RELU)
    code, out = run(tmp_path, "--impl", str(impl), "--layers", "relu")
    assert code == 1
    frame = pd.read_csv(out / "cases.csv")
    failed = frame[frame["status"] == "failed"]
    assert set(failed["tensor"]) == {"grad_input"}
    assert set(failed["values"]) == {"zeros"}  # only the cases with exact zeros at the kink
    assert (frame[frame["values"] == "normal"]["status"] == "passed").all()


def test_only_implemented_layers_run_and_the_rest_are_listed(tmp_path, capsys):
    impl = tmp_path / "only_relu.py"
    impl.write_text(BROKEN_RELU.replace(">= 0", "> 0"))
    code, out = run(tmp_path, "--impl", str(impl), "--quick")
    assert code == 0
    assert set(pd.read_csv(out / "cases.csv")["layer"]) == {"relu"}
    summary = (out / "summary.md").read_text()
    assert "not implemented: " in summary and "conv2d" in summary.split("not implemented: ")[1]


@pytest.mark.parametrize("args, message", [
    (["--layers", "conv4d"], "unknown value 'conv4d' (did you mean 'conv3d'?); allowed: conv2d"),
    (["--dtype", "float16"], "allowed: float32, float64"),
    (["--impl", "no_such_module_xyz"], "no module named 'no_such_module_xyz'"),
    (["--impl", "missing/file.py"], "no such file"),
    (["--layers", "relu", "--case", "relu[nope]"], "no case with id 'relu[nope]'"),
])
def test_usage_errors_exit_2_and_write_only_the_error(tmp_path, capsys, args, message):
    code, out = run(tmp_path, *args)
    assert code == 2
    assert message in capsys.readouterr().err
    # No case was checked: --out holds the error where a CI reads the verdict, and nothing else.
    assert sorted(path.name for path in out.iterdir()) == ["junit.xml", "summary.md"]
    assert 'errors="1"' in (out / "junit.xml").read_text()


def test_implementation_that_fails_to_import_exits_2_with_the_error(tmp_path, capsys):
    impl = tmp_path / "syntax.py"
    impl.write_text("def relu_forward(x:\n")
    code, out = run(tmp_path, "--impl", str(impl))
    assert code == 2 and "importing it raised SyntaxError" in capsys.readouterr().err
    assert "importing it raised SyntaxError" in (out / "junit.xml").read_text() and not (out / "cases.csv").exists()


def test_bad_case_file_exits_2_naming_file_and_key(tmp_path, capsys):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "mine.toml").write_text("[relu.grid]\ninput_shape = [[3, 4]]\nvalues = ['zero']\n")
    code, out = run(tmp_path, "--cases", str(cases))
    assert code == 2
    err = capsys.readouterr().err
    assert "mine.toml" in err and "relu.values" in err and "allowed: normal, zeros" in err
    assert not out.exists()


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["run", "--timeout", "-1"])
    assert raised.value.code == 2


def test_single_case_selection_reproduces_one_case(tmp_path):
    code, out = run(tmp_path, "--layers", "relu", "--quick")
    first = pd.read_csv(out / "cases.csv")["case"].iloc[0]
    code, out = run(tmp_path, "--layers", "relu", "--quick", "--case", first)
    assert code == 0 and set(pd.read_csv(out / "cases.csv")["case"]) == {first}


def test_python_dash_m_runs_from_any_folder_with_worker_processes(tmp_path):
    result = subprocess.run([sys.executable, "-m", "refcheck", "run", "--layers", "tanh", "--quick",
                             "--out", "r"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tanh" in result.stdout and (tmp_path / "r" / "cases.csv").exists()


def test_help_explains_options_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for fragment in ("--impl", "--layers", "--timeout", "--quick", "Exit codes", "conv2d"):
        assert fragment in text


@pytest.mark.parametrize("name, meant", [
    ("BatchNorm2d", "batch_norm"), ("batchnorm", "batch_norm"), ("CrossEntropyLoss", "cross_entropy"),
    ("cross_entropy_loss", "cross_entropy"), ("maxpool2d", "max_pool2d"), ("Conv2D", "conv2d"),
    ("LayerNorm", "layer_norm")])
def test_a_layer_named_as_a_class_or_misspelt_gets_the_layer_it_means(tmp_path, capsys, name, meant):
    assert main(["run", "--layers", name, "--quick", "--out", str(tmp_path)]) == 2
    assert f"unknown value {name!r} (did you mean {meant!r}?)" in capsys.readouterr().err
