"""1-D pooling diagnoses (the 2-D ideas along one axis): each mistake planted in a module of
tests/impls_diagnose, checked through the public API; every failing row, and only those, names it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from refcheck.execution.sweep import check

FIXTURES = Path(__file__).parent / "impls_diagnose"

MAX = """
[max_pool1d]
[max_pool1d.grid]
kernel_size = [2, 3]
stride = [1, 2]
padding = [0, 1]
values = ["VALUES"]
dtype = ["float32", "float64"]
[max_pool1d.vary]
channels = [2]
input_size = [9]
"""
AVG = """
[avg_pool1d]
[avg_pool1d.grid]
kernel_size = [3, 4]
stride = [1, 2, 4]
padding = [1]
count_include_pad = [true, false]
dtype = ["float32", "float64"]
[avg_pool1d.vary]
input_size = [10]
"""
# (module, space, layer, phrase, cases that must fail: a predicate on the case's row)
PLANTED = [
    ("max_pool1d_ties", MAX.replace("VALUES", "ties"), "max_pool1d", "ties sent to every maximum"),
    ("max_pool1d_assigned", MAX.replace("VALUES", "normal"), "max_pool1d", "assigned instead of accumulated"),
    ("avg_pool1d_assigned", AVG, "avg_pool1d", "assigned instead of accumulated"),
    ("avg_pool1d_count_include_pad", AVG, "avg_pool1d", "count_include_pad ignored"),
]


def _frame(tmp_path: Path, module: str, space: str, layer: str) -> pd.DataFrame:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    (folder / "space.toml").write_text(space, encoding="utf-8")
    return check(impl=str(FIXTURES / f"{module}.py"), layers=[layer], cases=folder, workers=0, selfcheck=False,
                 allow_frameworks=True)  # planted mistakes built on refcheck's own layers


@pytest.mark.parametrize("module, space, layer, phrase", PLANTED, ids=[row[0] for row in PLANTED])
def test_planted_1d_pooling_mistake_is_diagnosed_on_exactly_its_rows(tmp_path, module, space, layer, phrase):
    frame = _frame(tmp_path, module, space, layer)
    assert not (frame["status"] == "error").any()
    failed = frame[frame["status"] == "failed"]
    assert not failed.empty and (frame["status"] == "passed").any()
    named = failed["diagnosis"].fillna("").str.contains(phrase, regex=False)
    assert named.all(), failed.loc[~named, ["case", "tensor", "reason", "diagnosis"]].to_string()
    assert frame.loc[frame["status"] == "passed", "diagnosis"].isna().all()
    if "assigned" in module:
        # Windows overlap only when the stride is smaller than the kernel: exactly those cases fail.
        overlapping = frame["stride"].astype(int) < frame["kernel_size"].astype(int)
        assert set(frame.loc[overlapping & (frame["tensor"] == "grad_input"), "status"]) == {"failed"}
        assert set(frame.loc[~overlapping, "status"]) == {"passed"}
    if module == "avg_pool1d_count_include_pad":
        assert set(failed["count_include_pad"].astype(str)) == {"False"}
        assert set(failed["tensor"]) == {"output", "grad_input"}


def test_the_ties_diagnosis_needs_ties(tmp_path):
    frame = _frame(tmp_path, "max_pool1d_ties", MAX.replace("VALUES", "normal"), "max_pool1d")
    assert set(frame["status"]) == {"passed"}
