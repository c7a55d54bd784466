"""refcheck.strategies: valid configurations by the sweep's own rules, shrinking to the simplest, special values."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import refcheck
from refcheck.cases import load_spaces
from refcheck.cases.strategies import MAX_ELEMENTS, configurations, default_space, special_floats
from refcheck.cases.where import case_from_where, format_where, parse_where
from refcheck.specs import LAYERS

SPACES = {space.layer: space for space in load_spaces()}


def test_refcheck_strategies_is_the_public_name_of_the_module():
    from refcheck import strategies

    assert strategies is refcheck.strategies
    assert strategies.configurations is configurations
    import refcheck.strategies as again  # after the first access, the dotted import works too

    assert again is strategies


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_drawn_case_is_valid_and_its_where_text_rebuilds_it(data):
    layer = data.draw(st.sampled_from(sorted(SPACES)))
    drawn = data.draw(configurations(layer))
    spec = LAYERS[layer]
    spec.output_shapes(drawn.case.shape_map, drawn.case.hparam_map)  # torch's rules: raises if invalid
    assert sum(int(np.prod(s)) for _, s in drawn.case.shapes if s is not None) <= MAX_ELEMENTS
    text = format_where(drawn.params)
    assert parse_where(text) == drawn.params
    assert case_from_where(SPACES[layer], text, drawn.base_seed) == drawn.case


def test_shrinking_reaches_the_simplest_strided_convolution():
    drawn = find(configurations("conv2d"), lambda d: d.case.hparam_map["stride"] != (1, 1),
                 settings=settings(database=None, max_examples=200))
    shapes = drawn.case.shape_map
    assert shapes["input"][:2] == (1, 1) and shapes["weight"][:2] == (1, 1)
    assert sorted(drawn.case.hparam_map["stride"]) == [1, 2]
    assert drawn.base_seed == 0


def test_configurations_reach_beyond_the_sweep():
    # The shipped max_pool2d space has kernels up to 3 and strides up to 3: the search goes one further.
    drawn = find(configurations("max_pool2d"), lambda d: 4 in d.case.hparam_map["stride"],
                 settings=settings(database=None, max_examples=500))
    assert 4 in drawn.case.hparam_map["stride"]


@pytest.mark.parametrize("wanted", [
    lambda x: x == 0.0,
    lambda x: x < -1e5,
    lambda x: 0 < abs(x) < 1e-27,
    lambda x: abs(x) > np.finfo(np.float32).max / 8,
])
def test_special_floats_hold_each_kind_of_value(wanted):
    value = find(special_floats("float32"), wanted, settings=settings(database=None, max_examples=2000))
    assert np.isfinite(np.float32(value)) and wanted(value)


def test_a_layer_without_a_space_is_named():
    with pytest.raises(KeyError, match="unknown layer"):
        default_space("conv9d")


def _readme_example() -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### In your own hypothesis tests"):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("\n```", start)]


def _run_example(module: object) -> dict:
    import sys

    sys.modules["my_layers"] = module  # type: ignore[assignment]
    try:
        namespace: dict = {}
        exec(compile(_readme_example(), "README example", "exec"), namespace)
        return namespace
    finally:
        del sys.modules["my_layers"]


def test_the_readme_example_passes_on_the_built_in_layers():
    import refcheck.layers

    namespace = _run_example(refcheck.layers)
    namespace["test_max_pool_outputs_are_input_values"]()
    namespace["test_relu_is_never_negative"]()


def test_the_readme_example_catches_a_running_maximum_started_at_minus_1e5():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent / "impls" / "planted_maxpool_sentinel.py"
    spec = importlib.util.spec_from_file_location("planted_maxpool_sentinel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    namespace = _run_example(module)
    with pytest.raises(AssertionError):
        namespace["test_max_pool_outputs_are_input_values"]()


def test_a_space_torch_mostly_refuses_is_drawn_without_rejecting_most_examples(monkeypatch):
    # max_pool2d's grid is mostly combinations torch refuses (padding over half the kernel): a
    # strategy that rejected each at once failed hypothesis's health check in users' own tests.
    from hypothesis import given, seed

    from refcheck.cases import strategies as module

    outcomes = {"rejected": 0, "drawn": 0}
    real_reject = module.reject

    def counted_reject():
        outcomes["rejected"] += 1
        real_reject()

    monkeypatch.setattr(module, "reject", counted_reject)

    @seed(7)
    @settings(max_examples=150, deadline=None, database=None)
    @given(configurations("max_pool2d"))
    def draw(drawn):
        outcomes["drawn"] += 1

    draw()
    assert outcomes["drawn"] >= 100 and outcomes["rejected"] < outcomes["drawn"] / 10, outcomes
