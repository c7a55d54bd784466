"""Case spaces: loading, expansion rules, ids and seeds, and the coverage guarantee."""
from __future__ import annotations

import itertools
import random

import pytest

from refcheck.cases.case import case_seed
from refcheck.cases import build_case, expand, load_spaces
from refcheck.cases.shapes_seqloss import SEQLOSS_LAYERS
from refcheck.specs import CaseFileError
from refcheck.oracle import torch_accepts
from refcheck.specs import LAYERS, InvalidConfig


@pytest.fixture(scope="module")
def spaces():
    return {space.layer: space for space in load_spaces()}


@pytest.fixture(scope="module")
def expanded(spaces):
    return {layer: expand(space) for layer, space in spaces.items()}


def test_every_layer_has_a_default_space(spaces):
    assert set(spaces) == set(LAYERS)


def test_default_sweep_sizes(expanded):
    for layer, (cases, _) in expanded.items():
        assert len(cases) >= 10, layer
    assert len(expanded["conv2d"][0]) >= 300


def test_ids_are_unique_and_stable(spaces, expanded):
    ids = [case.id for cases, _ in expanded.values() for case in cases]
    assert len(ids) == len(set(ids))
    again = expand(spaces["conv2d"])[0]
    assert [c.id for c in again] == [c.id for c in expanded["conv2d"][0]]
    assert all(c.seed == case_seed(c.id, 0) for c in again)


def test_seed_depends_on_id_and_base_seed_only(spaces):
    cases_0 = {c.id: c.seed for c in expand(spaces["relu"], base_seed=0)[0]}
    cases_7 = {c.id: c.seed for c in expand(spaces["relu"], base_seed=7)[0]}
    assert cases_0.keys() == cases_7.keys()
    assert all(cases_0[i] != cases_7[i] for i in cases_0)
    assert len(set(cases_0.values())) == len(cases_0)


def test_case_id_is_readable(expanded):
    conv = next(c for c in expanded["conv2d"][0]
                if c.hparam_map["stride"] == (2, 2) and c.hparam_map["padding"] == (1, 1)
                and c.hparam_map["dilation"] == (2, 2))
    assert conv.id.startswith("conv2d[s2-p1-d2-g")
    assert "-k" in conv.id and conv.id.endswith(("-f32]", "-f64]"))


@pytest.mark.parametrize("quick", [False, True])
def test_coverage_holds_every_value_and_pair(spaces, quick):
    """Recount coverage from the cases themselves (independently of the expansion's bookkeeping)."""
    for layer, space in spaces.items():
        cases, coverage = expand(space, quick=quick)
        assert coverage.complete, (layer, coverage.missing)
        held = [_case_values(space, case) for case in cases]
        for name, values in space.params.items():
            for value in values:
                assert any(value in h.get(name, ()) for h in held) or ((name, value),) in coverage.infeasible, \
                    (layer, name, value)
        for a, b in itertools.combinations(space.pairwise, 2):
            for va, vb in itertools.product(space.params[a], space.params[b]):
                item = ((a, va), (b, vb))
                found = any(va in h.get(a, ()) and vb in h.get(b, ()) for h in held)
                assert found or item in coverage.infeasible, (layer, item)


def _case_values(space, case):
    """The space values a case holds, read back from the case (not from the expansion).

    A case may hold several options of one parameter (groups 2 is also depthwise on 2 channels)."""
    hp, shapes = case.hparam_map, case.shape_map
    values = {"dtype": {case.dtype}, "values": {case.values}}
    for name, options in space.params.items():
        for option in options:
            if name not in ("dtype", "values") and _holds(case, name, option, hp, shapes):
                values.setdefault(name, []).append(option)
    return values


def _holds(case, name, option, hp, shapes):
    if case.layer in SEQLOSS_LAYERS and name in _SEQLOSS_HOLDS and name not in hp:
        return _SEQLOSS_HOLDS[name](case, option, shapes)
    if "param" in shapes and name == "param_shape":  # an update rule
        return tuple(shapes["param"]) == tuple(option if isinstance(option, tuple) else (option,))
    spatial = len(shapes["input"] if "input" in shapes else shapes.get("query", shapes.get("param"))) - 2
    arity = max(spatial, 2) if name in hp and name not in ("kernel_size", "input_size") else spatial
    if case.layer in ("conv1d", "max_pool1d", "avg_pool1d"):
        arity = 1 if name in ("kernel_size", "input_size") else None  # 1-D hyperparameters are ints
    pair = (option,) * arity if arity and isinstance(option, int) and not isinstance(option, bool) else option
    if name in hp:
        if name == "groups" and option == "depthwise":
            return hp["groups"] == shapes["input"][1]
        if option == "none":  # None, or torch's own 'none' (reduction, gelu's approximate)
            return hp[name] is None or hp[name] == "none"
        return hp[name] == pair or hp[name] == option
    if name == "kernel_size":
        return tuple(shapes["weight"][2:]) == pair
    if name == "input_size":
        return tuple(shapes["input"][2:]) == pair
    if name == "bias":
        return (shapes["bias"] is not None) == option
    if name == "affine":
        return (shapes["weight"] is not None) == option
    if name == "running_stats":
        return (shapes["running_mean"] is not None) == option
    if name in ("num_embeddings", "embedding_dim"):
        return shapes["weight"][name == "embedding_dim"] == option
    if name == "batch":
        return shapes["input"][0] == option
    if name == "channels":
        if isinstance(option, int):
            return shapes["input"][1] == option
        out = shapes["weight"][1] * hp["groups"] if case.layer == "conv_transpose2d" else shapes["weight"][0]
        return shapes["input"][1] == option[0] and out == option[1]
    if name == "input_shape":
        return tuple(shapes["input"]) == tuple(option)
    if name == "features":
        return tuple(shapes["weight"]) == (option[1], option[0])
    if name == "batch_shape":
        return tuple(shapes["input"][:-1]) == tuple(option)
    return False


def _bias_present(shapes):
    return next(shapes[k] for k in ("bias", "bias_ih", "in_proj_bias") if k in shapes) is not None


def _batch(case, option, shapes):
    if "query" in shapes:
        return shapes["query"][0] == option
    return shapes["input"][1 if case.layer in ("rnn_tanh", "lstm") else 0] == option


def _mask_kind(case, option, shapes):
    return (shapes["attn_mask"] is None) if option == "none" else f"-mask-{option}-" in case.id


def _initial_state(case, option, shapes):
    given = {state for state in ("h0", "c0") if shapes.get(state) is not None}
    return given == {"given": {"h0", "c0"} & set(shapes), "none": set(), "h0": {"h0"}, "c0": {"c0"}}[option]


def _element_weight(case, option, shapes):
    weight, shape = shapes["weight"], shapes["input"]
    return {"none": weight is None, "full": weight == shape, "broadcast": weight == shape[-1:]}[option]


# Space parameters of the recurrent, attention, extra activation and weighted loss layers, read back
# from the case's shapes (and, for the mask kind, its id).
_SEQLOSS_HOLDS = {
    "bias": lambda case, option, shapes: _bias_present(shapes) == option,
    "batch": _batch,
    "input_features": lambda case, option, shapes: shapes["weight_ih"][1] == option,
    "hidden_size": lambda case, option, shapes: shapes["weight_hh"][1] == option,
    "seq_len": lambda case, option, shapes: shapes["input"][0] == option,
    "initial_state": _initial_state,
    "batch_shape": lambda case, option, shapes: (tuple(shapes["query"][:-2]) == tuple(option) if "query" in shapes
                                                 else tuple(shapes["input"][:-1]) == tuple(option)),
    "length": lambda case, option, shapes: shapes["query"][-2] == option,
    "source": lambda case, option, shapes: shapes["key"][-2] == option,
    "embed": lambda case, option, shapes: shapes["query"][-1] == option,
    "value_embed": lambda case, option, shapes: shapes["value"][-1] == option,
    "mask": _mask_kind,
    "num_parameters": lambda case, option, shapes: shapes["weight"][0] == 1 if option == 1 else (
        len(shapes["input"]) > 1 and shapes["weight"][0] == shapes["input"][1]),
    "class_weight": lambda case, option, shapes: (shapes["weight"] is not None) == option,
    "element_weight": _element_weight,
}


def test_conv2d_pairs_are_complete_except_same_with_stride(expanded):
    _, coverage = expanded["conv2d"]
    assert coverage.complete
    infeasible = {tuple(sorted(dict(item).items(), key=str)) for item in coverage.infeasible}
    assert all(dict(item)["padding"] == "same" and dict(item)["stride"] != (1, 1)
               for item in map(dict, infeasible))
    assert len(coverage.infeasible) == 3


def test_expansion_keeps_only_configurations_torch_accepts(expanded):
    for layer, (cases, _) in expanded.items():
        for case in cases[:: max(1, len(cases) // 25)]:
            assert torch_accepts(layer, case.shape_map, case.hparam_map) is None, case.id


def test_validity_rule_agrees_with_torch_on_random_configurations(spaces):
    """The shape rules decide validity without torch; torch is the oracle for them."""
    rng = random.Random(3)
    checked = {"valid": 0, "invalid": 0}
    for layer in ("conv2d", "max_pool2d", "avg_pool2d", "lp_pool2d", "flatten"):
        space = spaces[layer]
        for _ in range(120):
            choice = {name: rng.choice(values) for name, values in space.params.items()}
            try:
                case = build_case(space, choice)
            except InvalidConfig:
                shapes, hparams = _shapes_for_torch(space, choice)
                if shapes is not None:
                    assert torch_accepts(layer, shapes, hparams) is not None, (layer, choice)
                    checked["invalid"] += 1
                continue
            assert torch_accepts(layer, case.shape_map, case.hparam_map) is None, (layer, choice)
            checked["valid"] += 1
    assert checked["valid"] > 100 and checked["invalid"] > 20


def _shapes_for_torch(space, choice):
    """Shapes and hyperparameters of an invalid choice, built without the validity check."""
    from refcheck import cases as cases_module

    spec = LAYERS[space.layer]
    original = spec.output_shape
    try:
        object.__setattr__(spec, "output_shape", lambda shapes, hp: ())
        case = cases_module.build_case(space, choice)
    except InvalidConfig:
        return None, None  # rejected while building shapes (e.g. groups not dividing channels)
    finally:
        object.__setattr__(spec, "output_shape", original)
    return case.shape_map, case.hparam_map


def test_quick_sweep_is_smaller_with_the_same_coverage(spaces):
    full, _ = expand(spaces["conv2d"])
    quick, coverage = expand(spaces["conv2d"], quick=True)
    assert len(quick) < len(full) / 4
    assert coverage.complete


def test_quick_sweep_holds_each_input_kind_at_each_dtype_the_full_sweep_holds(spaces):
    # What overflows (large values) does so in float32 only: a quick subset that held 'large' in
    # float64 alone passed a softmax without max subtraction that the full sweep fails.
    for name, space in spaces.items():
        full, _ = expand(space)
        quick, _ = expand(space, quick=True)
        kinds = lambda cases: {(case.values, case.dtype) for case in cases}  # noqa: E731
        assert kinds(quick) == kinds(full), name


# --- malformed case files -------------------------------------------------------------------


def _write(tmp_path, text):
    (tmp_path / "bad.toml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("text, key, allowed", [
    ("[conv4d.grid]\nstride = [1]\n", "conv4d", "conv2d"),
    ("[conv2d.grid]\nstrides = [1]\n", "conv2d.grid.strides", "stride"),
    ("[conv2d.grid]\nstride = 1\n", "conv2d.grid.stride", None),
    ("[conv2d.grid]\ndtype = ['float16']\n", "conv2d.dtype", "float32"),
    ("[conv2d]\nsweep = 1\n", "conv2d.sweep", "grid"),
    ("[max_pool2d.grid]\nvalues = ['weird']\n", "max_pool2d.values", "ties"),
    ("[conv2d]\npairwise = ['stride']\n", "conv2d.pairwise", None),
    ("[conv2d.grid]\nstride = ['two']\n", "conv2d.stride", None),
    ("[conv2d.tolerance]\nfloat32 = -1\n", "conv2d.tolerance.float32", None),
])
def test_malformed_case_file_names_file_key_and_allowed(tmp_path, text, key, allowed):
    folder = _write(tmp_path, text)
    with pytest.raises(CaseFileError) as raised:
        load_spaces(folder)
    message = str(raised.value)
    assert "bad.toml" in message and key in message
    if allowed:
        assert "allowed:" in message and allowed in message


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    folder = _write(tmp_path, "[conv2d.grid\nstride = [1]\n")
    with pytest.raises(CaseFileError, match="bad.toml.*not valid TOML"):
        load_spaces(folder)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(CaseFileError, match="no \\*.toml"):
        load_spaces(tmp_path)


def test_tolerance_override_reaches_the_cases(tmp_path):
    folder = _write(tmp_path, "[relu.grid]\ninput_shape = [[3, 4]]\n[relu.tolerance]\nfloat64 = 10\n")
    cases, _ = expand(load_spaces(folder)[0])
    assert cases and all(case.tolerance_map == {"float64": 10.0} for case in cases)
