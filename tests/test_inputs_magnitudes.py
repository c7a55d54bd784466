"""Inputs over every magnitude: far below the usual sentinels, near the dtype's largest value, around 1e-30."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refcheck.cases import expand, load_spaces
from refcheck.cases.inputs import MAGNITUDE_KINDS, VALUE_KINDS, make_inputs
from refcheck.execution.sweep import check

IMPLS = Path(__file__).parent / "impls"
SWEPT = {"max_pool2d": MAGNITUDE_KINDS, "max_pool1d": MAGNITUDE_KINDS, "adaptive_max_pool2d": MAGNITUDE_KINDS,
         "leaky_relu": MAGNITUDE_KINDS,
         # relu and hardtanh of inputs all below -1e9 are constants: the sweep leaves that kind out.
         "relu": ("near_max", "tiny", "mixed_magnitudes"), "hardtanh": ("near_max", "tiny", "mixed_magnitudes"),
         "flatten": MAGNITUDE_KINDS, "softmax": ("below_sentinels", "tiny", "mixed_magnitudes"),
         "log_softmax": ("below_sentinels", "tiny", "mixed_magnitudes")}


@pytest.fixture(scope="module")
def cases():
    return {space.layer: expand(space)[0] for space in load_spaces(layers=SWEPT)}


def _inputs(cases, layer, kind):
    chosen = [case for case in cases[layer] if case.values == kind]
    assert chosen, f"{layer} has no {kind} case in the default sweep"
    return [(case, make_inputs(case)["input"]) for case in chosen]


@pytest.mark.parametrize("layer", sorted(SWEPT))
def test_the_default_sweep_holds_every_magnitude_kind_of_the_layer(cases, layer):
    held = {case.values for case in cases[layer]}
    assert set(SWEPT[layer]) <= held
    assert set(SWEPT[layer]) <= set(VALUE_KINDS[layer])


def test_below_sentinels_lies_below_minus_1e9_everywhere(cases):
    for case, x in _inputs(cases, "max_pool2d", "below_sentinels"):
        assert np.isfinite(x).all() and x.max() < -1e9, case.id


def test_near_max_is_finite_and_within_a_factor_four_of_the_dtype_maximum(cases):
    for case, x in _inputs(cases, "relu", "near_max"):
        largest = float(np.finfo(x.dtype).max)
        magnitude = np.abs(x.astype(np.float64))
        assert np.isfinite(x).all() and magnitude.min() >= 0.25 * largest * (1 - 1e-6), case.id
        assert magnitude.max() <= 0.5 * largest, case.id
        assert (x > 0).any() and (x < 0).any(), case.id
        # leaky_relu's largest slope in the sweep (1.5) keeps the result finite.
        assert np.isfinite(x * np.asarray(1.5, dtype=x.dtype)).all()


def test_tiny_values_sit_around_1e_30_with_both_signs(cases):
    signs = set()
    for case, x in _inputs(cases, "max_pool1d", "tiny"):
        magnitude = np.abs(x.astype(np.float64))
        assert magnitude.min() >= 1e-32 * (1 - 1e-6) and magnitude.max() <= 1e-28 * (1 + 1e-6), case.id
        assert (x != 0).all()
        signs |= set(np.sign(x).ravel().tolist())
    assert signs == {-1.0, 1.0}


def test_mixed_magnitudes_span_many_decades_of_both_signs(cases):
    for case, x in _inputs(cases, "leaky_relu", "mixed_magnitudes"):
        if x.size < 20:
            continue
        decades = np.log10(np.abs(x.astype(np.float64)))
        assert decades.min() >= -30.01 and decades.max() <= 30.01
        assert decades.max() - decades.min() > 20, case.id
        assert (x > 0).any() and (x < 0).any()


def test_a_running_maximum_started_at_minus_1e5_fails_the_default_sweep():
    frame = check(str(IMPLS / "planted_maxpool_sentinel.py"), ["max_pool2d"], workers=0)
    by_kind = frame.groupby("values")["status"].apply(set).to_dict()
    # Every window of a below_sentinels case lies under -1e5: every such case fails.
    below = frame[frame["values"] == "below_sentinels"]
    assert not below.empty
    assert set(below.loc[below["tensor"] == "output", "status"]) == {"failed"}
    # Above the sentinel the mistake does not show: the ordinary kinds all pass.
    for kind in ("normal", "ties", "very_negative", "tiny"):
        assert by_kind[kind] == {"passed"}, kind
