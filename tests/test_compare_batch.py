"""Tensors compared together (compare.batch) give what compare_tensor gives them one at a time.

The oracle is compare_tensor itself on each tensor alone: the batch may decline a tensor (None),
but whatever it answers must equal compare_tensor's comparison field for field, types included
(a tolerance overridden by an int stays an int in the report). Plain passing tensors must not be
declined, or the fast path would silently do nothing.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcheck.compare import compare_tensor
from refcheck.compare.batch import TensorItem, compare_passing

SHAPES = st.sampled_from([(), (1,), (7,), (3, 4), (2, 3, 4), (2, 1, 3, 2), (0,), (2, 0)])
DTYPES = st.sampled_from(["float32", "float64"])  # the case dtypes the tolerance rule knows
OVERRIDES = st.sampled_from([None, {}, {"float32": 128}, {"torch_factor": 2.5}, {"float64": 1e-3, "float32": 0.5}])


def _same(batch, alone) -> bool:
    fields = [f.name for f in dataclasses.fields(alone)]
    return all(getattr(batch, f) == getattr(alone, f) and type(getattr(batch, f)) is type(getattr(alone, f))
               for f in fields)


@st.composite
@np.errstate(all="ignore")
def tensor_items(draw):
    """A reference, torch's result near it and an implementation's result: often right, sometimes off
    (a scaled error, a NaN or inf, the wrong dtype or shape, a list, a view, a subclass)."""
    shape, dtype = draw(SHAPES), draw(DTYPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    reference = np.asarray(rng.standard_normal(shape) * draw(st.sampled_from([1.0, 1e-3, 1e6, 0.0])))
    if draw(st.booleans()) and reference.size:
        reference.flat[draw(st.integers(0, reference.size - 1))] = draw(st.sampled_from([np.inf, -np.inf, np.nan]))
    torch_at = np.asarray(reference + rng.standard_normal(shape) * abs(reference) * 1e-7).astype(dtype)
    noise = draw(st.sampled_from([0.0, 1e-9, 1e-6, 1e-3, 1.0]))
    result = np.asarray(reference * (1 + noise * rng.standard_normal(shape))).astype(dtype)
    twist = draw(st.sampled_from(["none"] * 6 + ["nan", "inf", "dtype", "shape", "list", "view", "subclass",
                                                 "duplicate max", "torch nan"]))
    if twist in ("nan", "inf") and result.size:
        result.flat[draw(st.integers(0, result.size - 1))] = np.nan if twist == "nan" else np.inf
    elif twist == "dtype":
        result = result.astype("float64" if dtype != "float64" else "float32")
    elif twist == "shape":
        result = result.reshape(-1)
    elif twist == "list":
        result = result.tolist()
    elif twist == "view" and result.ndim:
        result = np.ascontiguousarray(result[..., ::-1])[..., ::-1]  # a reversed, non-contiguous view
    elif twist == "subclass":
        result = result.view(np.matrix) if result.ndim == 2 else result.view(np.recarray)
    elif twist == "duplicate max" and result.size > 1:
        reference.flat[:] = 1.0
        result = np.full(shape, 1.5, dtype=dtype)  # every position the largest: argmax takes the first
        torch_at = reference.astype(dtype)
    elif twist == "torch nan" and torch_at.size:
        torch_at.flat[0] = np.nan
    return TensorItem(result, reference, torch_at, dtype, draw(OVERRIDES))


@settings(max_examples=300, deadline=None)
@given(st.lists(tensor_items(), min_size=1, max_size=12))
def test_batch_equals_one_at_a_time(items):
    for item, batch in zip(items, compare_passing(items)):
        alone = compare_tensor("t", item.result, item.reference, item.torch_at_dtype, item.dtype, item.overrides)
        if batch is not None:
            assert alone.passed and _same(batch, alone), (batch, alone)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_plain_passing_tensors_are_answered_in_one_batch(dtype):
    rng = np.random.default_rng(0)
    items = []
    for shape in [(5,), (3, 4), (2, 3, 4, 5), ()]:
        reference = rng.standard_normal(shape)
        items.append(TensorItem(reference.astype(dtype), reference, reference.astype(dtype), dtype, None))
    answered = compare_passing(items)
    for item, batch in zip(items, answered):
        alone = compare_tensor("t", item.result, item.reference, item.torch_at_dtype, item.dtype)
        assert batch is not None and _same(batch, alone)


def test_a_worst_position_is_the_first_largest_difference_in_each_tensor():
    reference = np.zeros((2, 3))
    result = np.zeros((2, 3))
    result[1, 0] = result[1, 2] = 1e-17  # two equal largest differences: the first is reported
    other = np.zeros(4)
    other[3] = 2e-17
    items = [TensorItem(result, reference, reference, "float64", None),
             TensorItem(other, np.zeros(4), np.zeros(4), "float64", None)]
    first, second = compare_passing(items)
    assert first.worst_index == (1, 0) and second.worst_index == (3,)


def test_failures_and_odd_results_are_left_to_the_one_at_a_time_comparison():
    reference = np.linspace(-1, 1, 12).reshape(3, 4)
    wrong = reference.astype("float32") + np.float32(0.5)
    items = [TensorItem(wrong, reference, reference.astype("float32"), "float32", None),
             TensorItem(reference.tolist(), reference, reference.astype("float32"), "float32", None),
             TensorItem(reference.astype("float64"), reference, reference.astype("float32"), "float32", None),
             TensorItem(None, reference, reference.astype("float32"), "float32", None),
             TensorItem(np.zeros(0, "float32"), np.zeros(0), np.zeros(0, "float32"), "float32", None)]
    assert compare_passing(items) == [None] * len(items)


def test_a_sweep_judged_in_batches_equals_one_tensor_at_a_time(monkeypatch):
    """A failing implementation (some tensors pass, some fail, in the same chunks) run in worker
    processes: every record equals the one made when each tensor is compared alone."""
    import pandas as pd

    from refcheck.execution import judge, runner
    from refcheck.execution.runner import CheckOptions, run_cases
    from refcheck.execution.sweep import plan_sweep

    cases = plan_sweep(layers="conv2d,relu", quick=True).cases
    impl = str(Path(__file__).parent / "impls" / "planted_conv_stride.py")
    answered = []
    original = runner.compare_passing

    def counted(items):
        outcome = original(items)
        answered.append(sum(o is not None for o in outcome))
        return outcome

    alone_calls = []
    one_at_a_time = judge.compare_tensor
    monkeypatch.setattr(judge, "compare_tensor", lambda *args: alone_calls.append(1) or one_at_a_time(*args))
    monkeypatch.setattr(runner, "compare_passing", counted)
    batched = pd.DataFrame(run_cases(impl, cases, CheckOptions(workers=2, allow_frameworks=True)).records).drop(columns="duration_s")
    compared_alone = len(alone_calls)
    monkeypatch.setattr(runner, "compare_passing", lambda items: [None] * len(items))
    alone = pd.DataFrame(run_cases(impl, cases, CheckOptions(workers=2, allow_frameworks=True)).records).drop(columns="duration_s")
    assert {"passed", "failed"} <= set(batched["status"])
    assert max(answered) > 4  # whole chunks went through the batch
    compared = (batched["status"] != "skipped").sum()
    assert compared_alone == compared - sum(answered)  # and only the rest was compared alone
    pd.testing.assert_frame_equal(batched, alone)


def test_the_mismatch_threshold_is_rounded_as_compare_tensor_rounds_it():
    """eps * scale is subnormal for a tiny float64 reference: allowed * eps * scale then depends on
    the order of the products; the batch must take compare_tensor's, or its count differs."""
    reference = np.array([2.7239951465921627e-294, 0.0])
    torch_at = np.array([2.7239951465921627e-294, 3.9316126092773246e-308])
    result = np.array([2.7239951465921627e-294, 3.1452900874218597e-307])
    item = TensorItem(result, reference, torch_at, "float64", None)
    alone = compare_tensor("t", result, reference, torch_at, "float64")
    batch = compare_passing([item])[0]
    assert batch is None or _same(batch, alone)
