"""refcheck fuzz: planted corner bugs are found, shrunk to a minimal case, and the printed command reproduces them.

Each planted implementation is right except in a corner a fixed sweep can miss. The expectations
on the minimal case are stated from where each mistake can show (an independent description), and
the printed `refcheck run` command is run in a fresh process, which must fail the same tensors.
"""
from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from refcheck.cases.where import parse_where
from refcheck.cli import main

ROOT = Path(__file__).resolve().parent.parent
IMPLS = Path(__file__).parent / "impls"
DIAGNOSE = Path(__file__).parent / "impls_diagnose"

pytest_plugins = ["pytester"]


def fuzz(capsys, *args: str) -> tuple[int, str]:
    code = main(["fuzz", "--no-database", "--seed", "0", "--allow-frameworks", *args])
    return code, capsys.readouterr().out


def finding(output: str) -> tuple[dict, set[str], str]:
    """(the minimal case's parameters, its failing tensors, the rerun command) from fuzz's output."""
    lines = output.splitlines()
    parameters = next(line for line in lines if line.strip().startswith("parameters:"))
    where = parameters.split("parameters:", 1)[1].rsplit("; base seed", 1)[0].strip()
    failing = next(line for line in lines if line.strip().startswith("failing:"))
    tensors = {item.strip().split(" (")[0] for item in failing.split("failing:", 1)[1].split(", ")}
    command = lines[lines.index("Rerun exactly this case:") + 1]
    return parse_where(where), tensors, command


def rerun(command: str, tmp_path: Path) -> tuple[int, pd.DataFrame]:
    """The printed command in a fresh process (python -m refcheck), reports into tmp_path."""
    words = shlex.split(command)
    assert words[:2] == ["refcheck", "run"]
    out = tmp_path / "rerun"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "refcheck", *words[1:], "--out", str(out), "--no-plots"],
                            capture_output=True, text=True, env=env, timeout=120)
    frame = pd.read_csv(out / "cases.csv")
    assert len(frame["case"].unique()) == 1, result.stdout
    return result.returncode, frame


def failed_tensors(frame: pd.DataFrame) -> set[str]:
    return set(frame.loc[frame["status"].isin(["failed", "error"]), "tensor"])


def test_dx_ignoring_the_stride_shrinks_to_one_sample_one_channel_and_one_stride_of_2(capsys, tmp_path):
    code, output = fuzz(capsys, "--impl", str(IMPLS / "planted_conv_stride.py"), "--layers", "conv2d",
                        "--max-examples", "300")
    assert code == 1, output
    params, tensors, command = finding(output)
    assert tensors == {"grad_input"}
    assert params["batch"] == 1
    assert params["channels"] in (1, (1, 1))
    stride = params["stride"] if isinstance(params["stride"], tuple) else (params["stride"],) * 2
    assert sorted(stride) == [1, 2], stride  # a stride of 2 on one axis, 1 on the other
    code, frame = rerun(command, tmp_path)
    assert code == 1 and failed_tensors(frame) == tensors


def test_a_relu_gradient_wrong_only_at_zero_is_found_on_exact_zeros(capsys, tmp_path):
    code, output = fuzz(capsys, "--impl", str(IMPLS / "planted_relu_grad_at_zero.py"), "--layers", "relu",
                        "--max-examples", "300")
    assert code == 1, output
    params, tensors, command = finding(output)
    assert tensors == {"grad_input"}
    assert params["values"] == "zeros"  # the only kind with exact zeros
    assert math.prod(params["input_shape"] if isinstance(params["input_shape"], tuple) else
                     (params["input_shape"],)) <= 4
    code, frame = rerun(command, tmp_path)
    assert code == 1 and failed_tensors(frame) == tensors


def test_max_pooling_that_assigns_on_overlapping_windows_shrinks_to_an_overlap(capsys, tmp_path):
    code, output = fuzz(capsys, "--impl", str(DIAGNOSE / "max_pool_assigned.py"), "--layers", "max_pool2d",
                        "--max-examples", "300")
    assert code == 1, output
    params, tensors, command = finding(output)
    assert tensors == {"grad_input"}
    assert params["batch"] == 1 and params["channels"] == 1
    kernel, stride = params["kernel_size"], params["stride"]
    dilation = params["dilation"]
    # Two windows share an element only where the stride is smaller than the dilated kernel's span.
    assert any(s < d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation)), params
    code, frame = rerun(command, tmp_path)
    assert code == 1 and failed_tensors(frame) == tensors


def test_binary_cross_entropy_taking_log_of_zero_is_found_at_the_edges(capsys, tmp_path):
    code, output = fuzz(capsys, "--impl", str(IMPLS / "planted_bce_log_zero.py"), "--layers",
                        "binary_cross_entropy", "--max-examples", "300")
    assert code == 1, output
    params, tensors, command = finding(output)
    assert params["values"] == "edges"  # the only kind with probabilities of exactly 0 and 1
    assert "non-finite" in output
    code, frame = rerun(command, tmp_path)
    assert code == 1 and failed_tensors(frame) == tensors


def test_a_running_maximum_started_at_minus_1e5_shrinks_to_a_single_element(capsys, tmp_path):
    code, output = fuzz(capsys, "--impl", str(IMPLS / "planted_maxpool_sentinel.py"), "--layers", "max_pool2d",
                        "--max-examples", "300")
    assert code == 1, output
    params, tensors, command = finding(output)
    assert tensors == {"output", "grad_input"}
    assert params["values"] in ("below_sentinels", "near_max", "mixed_magnitudes")  # kinds reaching below -1e5
    assert params["input_size"] == (1, 1) and params["kernel_size"] == (1, 1)
    assert "seed" in command and "--where" in command
    code, frame = rerun(command, tmp_path)
    assert code == 1 and failed_tensors(frame) == tensors


def test_the_seed_makes_the_search_repeat_exactly(capsys):
    args = ("--impl", str(IMPLS / "planted_maxpool_sentinel.py"), "--layers", "max_pool2d", "--workers", "0")
    first = fuzz(capsys, *args)
    second = fuzz(capsys, *args)
    assert first == second and first[0] == 1


def test_the_example_database_replays_a_failure_first(capsys, tmp_path):
    database = tmp_path / "db"
    args = ["fuzz", "--impl", str(IMPLS / "planted_maxpool_sentinel.py"), "--layers", "max_pool2d", "--workers", "0",
            "--database", str(database)]
    assert main(args) == 1
    first = capsys.readouterr().out
    assert any(database.rglob("*"))
    assert main(args) == 1
    again = capsys.readouterr().out
    examples = [int(re.search(r"\((\d+) examples", text).group(1)) for text in (first, again)]
    assert examples[1] <= examples[0] and examples[1] <= 3, (first, again)
    assert finding(first)[2] == finding(again)[2]


def test_the_built_in_layers_fuzz_clean(capsys):
    code, output = fuzz(capsys, "--max-examples", "4")
    assert code == 0, output
    assert re.search(r"^(\d+) examples over (\d+) layers: no failing case$", output, re.M)
    assert output.count("clean after 4 examples") >= 45


def test_usage_errors_exit_2(capsys):
    assert main(["fuzz", "--layers", "nope"]) == 2
    assert main(["fuzz", "--max-examples", "0"]) == 2


@pytest.mark.parametrize("where, message", [
    ("stride=2", "kernel_size has no default; give it in --where"),
    ("kernel_size=2, strid=2", "max_pool2d has no parameter 'strid'"),
    ("kernel_size=2, stride=0", "out of range"),
    ("kernel_size=2, padding=2", "padding 2 should be at most half of kernel_size 2"),
    ("kernel_size 2", "is not name=value"),
])
def test_where_names_what_is_wrong(capsys, tmp_path, where, message):
    code = main(["run", "--layers", "max_pool2d", "--where", where, "--out", str(tmp_path)])
    assert code == 2
    assert message in capsys.readouterr().err


def test_pytest_refcheck_fuzz_adds_one_search_per_layer(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-v", "--refcheck-impl", str(IMPLS / "planted_conv_stride.py"),
        "--refcheck-layers", "conv2d", "--refcheck-fuzz", "150", "-k", "fuzz", timeout=240)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "refcheck/conv2d::fuzz FAILED" in output
    assert "smallest failing case after" in output and "grad_input" in output
    command = next(line.strip() for line in result.outlines if line.strip().startswith("refcheck run "))
    assert "--where" in command and "--layers conv2d" in command


def test_pytest_refcheck_fuzz_passes_on_the_built_in_layers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--refcheck-impl", "refcheck.layers",
                                           "--refcheck-layers", "relu,max_pool2d", "--refcheck-fuzz", "20",
                                           "-k", "fuzz", timeout=240)
    result.assert_outcomes(passed=2)


POOL_WITHOUT_PADDING = '''
import numpy as np


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


class MaxPool2d:
    # No padding, dilation or ceil_mode argument: only cases at their defaults can run.
    def __init__(self, kernel_size, stride=None):
        self.k = _pair(kernel_size)
        self.s = self.k if stride is None else _pair(stride)

    def forward(self, x):
        (kh, kw), (sh, sw) = self.k, self.s
        oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
        windows = np.stack([x[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] for i in range(kh) for j in range(kw)], -1)
        self.shape, self.arg = x.shape, np.argmax(windows, axis=-1)  # the first maximum, as torch takes
        return windows.max(axis=-1)

    def backward(self, dout):
        (kh, kw), (sh, sw) = self.k, self.s
        dx = np.zeros(self.shape, dtype=dout.dtype)
        oh, ow = dout.shape[2:]
        for i in range(kh):
            for j in range(kw):
                dx[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += dout * (self.arg == i * kw + j)
        return dx
'''


def test_the_search_draws_only_cases_the_code_takes(capsys, tmp_path):
    # A pool without padding, dilation or ceil_mode arguments drew padded cases: 199 of 200 were
    # skipped and the search said 'clean' of a tie bug that the sweep fails.
    path = tmp_path / "pool.py"
    path.write_text(POOL_WITHOUT_PADDING)
    code, output = fuzz(capsys, "--impl", str(path), "--layers", "max_pool2d", "--max-examples", "60")
    assert "skipped" not in output.split("\n\n")[0]
    assert code == 0 and "max_pool2d: clean after 60 examples" in output
    path.write_text(POOL_WITHOUT_PADDING.replace("np.argmax(windows, axis=-1)",  # the last maximum instead
                                                 "kh * kw - 1 - np.argmax(windows[..., ::-1], axis=-1)"))
    code, output = fuzz(capsys, "--impl", str(path), "--layers", "max_pool2d", "--max-examples", "100")
    assert code == 1 and "values=ties" in output
