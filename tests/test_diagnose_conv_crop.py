"""Two ways real conv2d backwards crop the forward padding off the input gradient, each right at some
paddings only: ``[pad:-pad]`` (empty at padding 0) and a hard-coded ``[1:-1]`` (right at padding 1).
Planted in modules of tests/impls_diagnose and checked through the public API: every failing row,
and only those, carries the diagnosis."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from refcheck.execution.sweep import check

FIXTURES = Path(__file__).parent / "impls_diagnose"

SPACE = """
[conv2d]
[conv2d.grid]
padding = [0, 1, 2, [1, 0], [0, 2]]
stride = [1, 2]
kernel_size = [3]
dtype = ["float32", "float64"]
[conv2d.vary]
channels = [[2, 3]]
input_size = [[7, 6]]
bias = [true]
"""


def _frame(tmp_path: Path, module: str) -> pd.DataFrame:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    (folder / "space.toml").write_text(SPACE, encoding="utf-8")
    return check(impl=str(FIXTURES / f"{module}.py"), layers=["conv2d"], cases=folder, workers=0, selfcheck=False)


@pytest.fixture(scope="module")
def negative_pad(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return _frame(tmp_path_factory.mktemp("negative_pad"), "conv_crop_negative_pad")


@pytest.fixture(scope="module")
def cropped_by_one(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return _frame(tmp_path_factory.mktemp("crop_one"), "conv_crop_one")


def test_pad_minus_pad_fails_exactly_where_a_padding_is_zero_and_says_so(negative_pad):
    frame = negative_pad
    assert not (frame["status"] == "error").any()
    failed = frame[frame["status"] == "failed"]
    assert set(failed["tensor"]) == {"grad_input"}
    assert set(failed["padding"]) == {"(0, 0)", "(1, 0)", "(0, 2)"}
    # Every case with a zero padding fails its grad_input; the cases padded on both axes pass.
    zero = frame[frame["padding"].isin(["(0, 0)", "(1, 0)", "(0, 2)"]) & (frame["tensor"] == "grad_input")]
    assert set(zero.index) == set(failed.index) and len(failed) == 12
    assert failed["diagnosis"].str.startswith("padding cropped with [pad:-pad]: at padding 0 that slice is empty").all()
    assert failed["reason"].str.contains("shape").all()
    one_axis = failed[failed["padding"] == "(1, 0)"]
    assert one_axis["diagnosis"].str.contains(r"shape \(2, 2, 7, 0\)").all()
    assert frame.loc[frame["status"] == "passed", "diagnosis"].isna().all()


def test_hard_coded_one_fails_wherever_the_padding_is_not_one_and_says_so(cropped_by_one):
    frame = cropped_by_one
    assert not (frame["status"] == "error").any()
    failed = frame[frame["status"] == "failed"]
    assert set(failed["tensor"]) == {"grad_input"}
    assert set(failed["padding"]) == {"(0, 0)", "(2, 2)", "(1, 0)", "(0, 2)"}
    assert set(frame.loc[frame["padding"] == "(1, 1)", "status"]) == {"passed"}
    assert len(failed) == 16
    assert failed["diagnosis"].str.startswith("padding cropped with a hard-coded [1:-1]").all()
    at_two = failed[failed["padding"] == "(2, 2)"]
    assert at_two["diagnosis"].str.contains(r"at padding \(2, 2\)").all()
    assert frame.loc[frame["status"] == "passed", "diagnosis"].isna().all()


def test_the_two_crops_are_not_confused(negative_pad, cropped_by_one):
    assert not negative_pad["diagnosis"].fillna("").str.contains("hard-coded").any()
    assert not cropped_by_one["diagnosis"].fillna("").str.contains("pad:-pad").any()
