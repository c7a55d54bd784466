"""The shape rules of the recurrent, attention, extra activation and loss layers agree with torch:
a configuration is rejected (InvalidConfig) exactly where torch raises."""
from __future__ import annotations

import random

import pytest

from refcheck import cases as cases_module
from refcheck.cases import load_spaces
from refcheck.oracle import torch_accepts
from refcheck.specs import LAYERS, InvalidConfig

# Spaces with values torch rejects next to values it accepts.
SPACES = """
[hardtanh.grid]
min_val = [-1.0, 0.5, 2.0]
max_val = [1.0, 0.0]
[gelu.grid]
approximate = ["none", "tanh", "exact"]
[huber_loss.grid]
delta = [1.0, 0.0, -1.0]
reduction = ["mean", "none", "avg"]
[smooth_l1_loss.grid]
beta = [1.0, 0.0, -0.5]
[kl_div.grid]
reduction = ["mean", "batchmean", "none", "avg"]
log_target = [false, true]
[multi_margin_loss.grid]
p = [1, 2, 3]
class_weight = [false, true]
input_shape = [[4, 5], [6]]
[cross_entropy.grid]
label_smoothing = [0.0, 0.5, 1.5]
class_weight = [false, true]
input_shape = [[4, 5], [2, 3, 4], [6]]
[nll_loss.grid]
reduction = ["mean", "sum", "none", "avg"]
input_shape = [[4, 5], [2, 3, 4], [6]]
[binary_cross_entropy.grid]
element_weight = ["none", "full", "broadcast"]
reduction = ["mean", "none"]
[prelu.grid]
input_shape = [[4, 5], [2, 3, 4]]
num_parameters = [1, "channels"]
[scaled_dot_product_attention.grid]
is_causal = [false, true]
mask = ["none", "bool", "additive", "bool_2d"]
batch_shape = [[2], [2, 3]]
dropout_p = [0.0]
[multi_head_attention.grid]
num_heads = [1, 2, 3]
embed = [4, 6]
mask = ["none", "bool", "bool_per_head"]
[rnn_tanh.grid]
initial_state = ["given", "none"]
bias = [true, false]
[lstm.grid]
initial_state = ["given", "none", "h0", "c0"]
[lstm_cell.grid]
bias = [true, false]
hidden_size = [1, 3]
[gru_cell.grid]
bias = [true, false]
"""


@pytest.fixture(scope="module")
def spaces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cases")
    (folder / "rules.toml").write_text(SPACES, encoding="utf-8")
    return {space.layer: space for space in load_spaces(folder)}


def _unchecked_case(space, choice):
    """The case of a choice with the spec's shape rule switched off (None if the shapes cannot be built)."""
    spec = LAYERS[space.layer]
    original = spec.output_shape
    try:
        object.__setattr__(spec, "output_shape", lambda shapes, hp: ())
        return cases_module.build_case(space, choice)
    except InvalidConfig:
        return None
    finally:
        object.__setattr__(spec, "output_shape", original)


def test_shape_rules_agree_with_torch(spaces):
    rng = random.Random(5)
    checked = {"valid": 0, "invalid": 0}
    for layer, space in spaces.items():
        for _ in range(12):
            choice = {name: rng.choice(values) for name, values in space.params.items()}
            try:
                case = cases_module.build_case(space, choice)
            except InvalidConfig:
                unchecked = _unchecked_case(space, choice)
                if unchecked is not None:
                    assert torch_accepts(layer, unchecked.shape_map, unchecked.hparam_map) is not None, (layer, choice)
                    checked["invalid"] += 1
                continue
            assert torch_accepts(layer, case.shape_map, case.hparam_map) is None, (layer, choice)
            checked["valid"] += 1
    assert checked["valid"] > 100 and checked["invalid"] > 30, checked


def test_the_older_cases_keep_their_ids():
    """cross_entropy and binary_cross_entropy gained weights and hyperparameters; at their defaults the
    ids are the ones they had (the new hyperparameters are left out, no weight marker)."""
    spaces = {space.layer: space for space in load_spaces(layers=["cross_entropy", "binary_cross_entropy"])}
    ce = cases_module.build_case(spaces["cross_entropy"], {"input_shape": (4, 5), "reduction": "mean",
                                                           "dtype": "float32", "values": "normal"})
    assert ce.id == "cross_entropy[mean-4x5-f32]"
    weighted = cases_module.build_case(spaces["cross_entropy"], {
        "input_shape": (4, 5), "reduction": "sum", "dtype": "float64", "values": "large", "class_weight": True,
        "ignore_index": 1, "label_smoothing": 0.2})
    assert weighted.id == "cross_entropy[sum-ii1-ls0.2-4x5-w5-large-f64]"
    bce = cases_module.build_case(spaces["binary_cross_entropy"], {"input_shape": (2, 3, 4), "reduction": "sum",
                                                                   "dtype": "float64", "values": "edges"})
    assert bce.id == "binary_cross_entropy[sum-2x3x4-edges-f64]"
