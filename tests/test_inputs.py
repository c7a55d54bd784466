"""Generated inputs: seeded, the right shapes and dtypes, and the special values where they matter."""
from __future__ import annotations

import numpy as np
import pytest

from refcheck.cases import expand, load_spaces
from refcheck.cases.inputs import make_inputs, make_upstream_gradient
from refcheck.specs import LAYERS


@pytest.fixture(scope="module")
def cases():
    return {space.layer: expand(space)[0] for space in load_spaces()}


def test_shapes_dtypes_and_seeded_repeatability(cases):
    for layer, layer_cases in cases.items():
        for case in layer_cases[:5]:
            first, again = make_inputs(case), make_inputs(case)
            for name, shape in case.shapes:
                if shape is None:
                    assert first[name] is None
                    continue
                assert first[name].shape == shape
                spec = LAYERS[layer]
                expected = np.int64 if name in spec.integer else bool if name in spec.boolean else np.dtype(case.dtype)
                if name == "attn_mask" and first[name].dtype == np.bool_:
                    expected = np.bool_  # a boolean attention mask (others are additive, of the case's dtype)
                assert first[name].dtype == expected
                np.testing.assert_array_equal(first[name], again[name])


def test_upstream_gradient_is_random_never_ones(cases):
    for layer_cases in cases.values():
        case = layer_cases[0]
        spec = LAYERS[case.layer]
        shape = spec.output_shapes(case.shape_map, case.hparam_map)[spec.outputs[0]]
        dout = make_upstream_gradient(case, shape)
        assert dout.shape == shape and dout.dtype == np.dtype(case.dtype)
        if dout.size > 1:
            assert np.unique(dout).size == dout.size


def test_relu_zero_cases_hold_exact_zeros(cases):
    zero_cases = [c for c in cases["relu"] if c.values == "zeros"]
    assert zero_cases
    for case in zero_cases:
        assert (make_inputs(case)["input"] == 0).sum() > 0


def test_max_pool_ties_put_equal_maxima_in_windows(cases):
    tie_cases = [c for c in cases["max_pool2d"] if c.values == "ties" and c.hparam_map["kernel_size"] != (1, 1)]
    assert tie_cases
    case = tie_cases[0]
    x = make_inputs(case)["input"]
    kh, kw = case.hparam_map["kernel_size"]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    flat = windows.reshape(*windows.shape[:4], -1)
    ties = (flat == flat.max(axis=-1, keepdims=True)).sum(axis=-1) > 1
    assert ties.mean() > 0.2


def test_padded_max_pool_has_very_negative_cases(cases):
    assert any(c.values == "very_negative" and c.hparam_map["padding"] != (0, 0) for c in cases["max_pool2d"])
    case = next(c for c in cases["max_pool2d"] if c.values == "very_negative")
    assert make_inputs(case)["input"].max() < -100


def test_binary_cross_entropy_edges_hold_probabilities_zero_and_one(cases):
    edge = [c for c in cases["binary_cross_entropy"] if c.values == "edges"]
    assert edge
    p = make_inputs(edge[0])["input"]
    assert (p == 0).any() and (p == 1).any() and ((p >= 0) & (p <= 1)).all()


def test_cross_entropy_targets_are_valid_class_indices(cases):
    for case in cases["cross_entropy"]:
        tensors = make_inputs(case)
        classes = tensors["input"].shape[1]
        assert tensors["target"].min() >= 0 and tensors["target"].max() < classes
