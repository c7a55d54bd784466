"""The shape rules of conv1d, conv3d, conv_transpose2d, max/avg_pool1d, the normalisations, dropout
and embedding decide validity without torch; torch is the oracle for them, on random configurations
drawn from spaces wider than the case files (so that many are invalid)."""
from __future__ import annotations

import random

import pytest

from refcheck.cases import build_case, load_spaces
from refcheck.oracle import torch_accepts
from refcheck.specs import LAYERS, InvalidConfig

WIDE = {
    "conv1d": {"kernel_size": [1, 3, 6, 9], "stride": [1, 2], "padding": [0, 2, "same", "valid"],
               "dilation": [1, 3], "groups": [1, 2, 3], "channels": [[2, 4], [3, 3], [4, 6]], "input_size": [5, 8],
               "bias": [True, False]},
    "conv3d": {"kernel_size": [1, 3, [4, 2, 1]], "stride": [1, 2], "padding": [0, 1, "same"], "dilation": [1, 2],
               "groups": [1, 2, 3], "channels": [[2, 4], [3, 3]], "input_size": [[3, 4, 5], 4]},
    "conv_transpose2d": {"kernel_size": [1, 2, 3], "stride": [1, 2, 3], "padding": [0, 1, 3],
                         "output_padding": [0, 1, 2], "dilation": [1, 2], "groups": [1, 2, 3],
                         "channels": [[2, 4], [3, 3], [6, 2]], "input_size": [[1, 1], [3, 2]]},
    "max_pool1d": {"kernel_size": [1, 2, 3, 5], "stride": [1, 2], "padding": [0, 1, 2, 3], "dilation": [1, 2, 4],
                   "ceil_mode": [False, True], "input_size": [2, 5, 8]},
    "avg_pool1d": {"kernel_size": [1, 2, 3, 5], "stride": [1, 2], "padding": [0, 1, 2, 3],
                   "ceil_mode": [False, True], "count_include_pad": [False, True], "input_size": [2, 5, 8]},
    "batch_norm": {"input_shape": [[1, 3], [2, 3], [1, 3, 1], [1, 3, 2], [2, 3, 4, 4]], "training": [True, False],
                   "running_stats": [True, False], "affine": [True, False]},
    "instance_norm": {"input_shape": [[2, 3], [2, 3, 1], [1, 3, 4], [2, 3, 1, 1], [1, 2, 3, 3]],
                      "use_input_stats": [True, False], "running_stats": [True, False], "affine": [True, False]},
    "layer_norm": {"input_shape": [[4, 5], [2, 4, 5], [5, 4]], "normalized_shape": [[5], [4, 5], [4], [2, 4, 5]],
                   "affine": [True, False]},
    "group_norm": {"input_shape": [[1, 6], [2, 6], [1, 6, 1], [2, 6, 3]], "num_groups": [1, 2, 4, 6, 7],
                   "affine": [True, False]},
    "dropout": {"p": [-0.1, 0.0, 0.5, 1.0, 1.5], "training": [True, False], "input_shape": [[3, 4]]},
    "embedding": {"padding_idx": ["none", 0, -4, 3, 4, -5], "num_embeddings": [4], "input_shape": [[3, 2]]},
}


@pytest.fixture(scope="module")
def spaces():
    return {space.layer: space for space in load_spaces()}


def _unchecked(space, choice):
    """Shapes and hyperparameters of a choice, built without the validity rule (None if the shape
    builder itself rejects it, e.g. groups not dividing the channels)."""
    spec = LAYERS[space.layer]
    original = spec.output_shape
    try:
        object.__setattr__(spec, "output_shape", lambda shapes, hp: ())
        case = build_case(space, choice)
    except InvalidConfig:
        return None
    finally:
        object.__setattr__(spec, "output_shape", original)
    return case


@pytest.mark.parametrize("layer", sorted(WIDE))
def test_validity_rule_agrees_with_torch_on_random_configurations(spaces, layer):
    rng = random.Random(5)
    space = spaces[layer]
    checked = {"valid": 0, "invalid": 0}
    for _ in range(60):
        choice = {name: rng.choice(values) for name, values in {**space.params, **WIDE[layer]}.items()}
        try:
            case = build_case(space, choice)
        except InvalidConfig:
            unchecked = _unchecked(space, choice)
            if unchecked is not None:
                assert torch_accepts(layer, unchecked.shape_map, unchecked.hparam_map) is not None, (layer, choice)
                checked["invalid"] += 1
            continue
        assert torch_accepts(layer, case.shape_map, case.hparam_map) is None, (layer, choice)
        checked["valid"] += 1
    assert checked["valid"] >= 5 and checked["invalid"] >= 3, checked


@pytest.mark.parametrize("layer", sorted(WIDE))
def test_output_shapes_are_torchs(spaces, layer):
    """Every output shape the spec predicts for the default sweep's cases is the one torch returns."""
    from refcheck.cases import expand, make_inputs
    from refcheck.oracle import torch_results

    spec = LAYERS[layer]
    cases, _ = expand(spaces[layer], quick=True)
    for case in cases[:: max(1, len(cases) // 12)]:
        predicted = spec.output_shapes(case.shape_map, case.hparam_map)
        results = torch_results(layer, make_inputs(case), case.hparam_map, None)
        for name, shape in predicted.items():
            got = results[name]
            assert (None if got is None else tuple(got.shape)) == shape, (case.id, name)
