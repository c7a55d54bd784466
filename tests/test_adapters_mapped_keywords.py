"""Functions named by a mapping with keyword arguments of their own: spelled their own way
(``pad``, ``size``, or as the mapping's ``args`` says), one int where torch takes a pair
(``stride=1``), a bias they always add. Such functions erred on every case (a tuple where the
code does arithmetic with an int, None where it adds the bias) and the mapping's ``args`` were
ignored for functions."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from refcheck.cli import main
from refcheck.execution.implementation import load_implementation

HOMEWORK = '''
import numpy as np
from refcheck.layers import conv2d_backward, conv2d_forward, max_pool2d_backward, max_pool2d_forward


def _pair(value):
    return tuple(value) if isinstance(value, tuple) else (value, value)


def conv_forward(X, W, b, stride=1, pad=0):
    """stride and pad are ints (a tuple makes ((2, 1), (2, 1)), which refcheck's own conv refuses)."""
    return conv2d_forward(X, W, b, stride=STRIDE, padding=(pad, pad), dilation=(1, 1), groups=1)


def conv_backward(dout, cache):
    return conv2d_backward(dout, cache)


def maxpool_forward(X, size=2, stride=2):
    return max_pool2d_forward(X, kernel_size=(size, size), stride=(stride, stride), padding=(0, 0),
                              dilation=(1, 1), ceil_mode=False)


def maxpool_backward(dout, cache):
    return max_pool2d_backward(dout, cache)


def fc_forward(X, W, b):
    """X (N, D), W (D, M): b is always added."""
    return X @ W + b, (X, W)


def fc_backward(dout, cache):
    X, W = cache
    rows, grads = X.reshape(-1, X.shape[-1]), dout.reshape(-1, dout.shape[-1])
    return dout @ W.T, rows.T @ grads, grads.sum(axis=0)
'''

MAPPING = '''
[conv2d]
function = "conv_forward"
backward = "conv_backward"

[max_pool2d]
function = "maxpool_forward"
backward = "maxpool_backward"
args = { kernel_size = "size" }

[linear]
function = "fc_forward"
backward = "fc_backward"
weight_layout = "(in, out)"
'''


def _write(tmp_path: Path, stride: str) -> tuple[Path, Path]:
    path = tmp_path / "homework.py"
    path.write_text(HOMEWORK.replace("STRIDE", stride), encoding="utf-8")
    mapping = tmp_path / "refcheck.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return path, mapping


def _run(tmp_path: Path, path: Path, mapping: Path, layers: str) -> tuple[int, pd.DataFrame]:
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(path), "--map", str(mapping), "--layers", layers, "--out", str(out),
                 "--allow-frameworks",
                 "--no-plots", "--quick"])
    return code, pd.read_csv(out / "cases.csv")


def test_int_keywords_of_their_own_get_square_cases_as_ints(tmp_path):
    path, mapping = _write(tmp_path, "(stride, stride)")
    layers = load_implementation(str(path), str(mapping)).layers
    assert {"stride", "padding"} <= set(layers["conv2d"].accepted)
    assert {"kernel_size", "stride"} <= set(layers["max_pool2d"].accepted)
    code, frame = _run(tmp_path, path, mapping, "conv2d,max_pool2d")
    ran = frame[frame["status"] != "skipped"]
    assert code == 0, ran.loc[ran["status"] != "passed", ["case", "reason"]].to_string()
    assert set(ran["status"]) == {"passed"}
    skipped = frame[frame["status"] == "skipped"]
    # A non-square stride cannot be given as one int: left out and named, never run.
    assert not ran["stride"].isin(["(2, 1)", "(1, 2)", "(3, 2)"]).any()
    assert ran["padding"].isin(["(1, 1)", "(2, 2)"]).any() and ran["stride"].isin(["(2, 2)"]).any()
    assert ran["kernel_size"].isin(["(3, 3)"]).any()
    assert skipped.empty or skipped["reason"].str.contains("takes one int").all()


def test_a_function_that_takes_pairs_too_gets_the_non_square_cases(tmp_path):
    path, mapping = _write(tmp_path, "_pair(stride)")
    code, frame = _run(tmp_path, path, mapping, "conv2d")
    ran = frame[frame["status"] != "skipped"]
    assert code == 0 and set(ran["status"]) == {"passed"}
    assert ran["stride"].isin(["(2, 1)", "(1, 2)", "(3, 2)"]).any()


@pytest.mark.parametrize("layer", ["conv2d", "linear"])
def test_a_bias_the_function_always_adds_is_zeros_on_cases_without_bias(tmp_path, layer):
    path, mapping = _write(tmp_path, "(stride, stride)")
    code, frame = _run(tmp_path, path, mapping, layer)
    no_bias = frame[frame["case"].str.contains("nobias")]
    assert len(no_bias) and set(no_bias["status"]) == {"passed"}
    assert "grad_bias" not in set(no_bias["tensor"])
    with_bias = frame[~frame["case"].str.contains("nobias")]
    assert "grad_bias" in set(with_bias["tensor"])
    assert code == 0
