"""The float64 reference of GELU avoids torch's cancellation; torch's own float64 error is shown beside it.

An independent oracle: mpmath at 50 digits.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

from refcheck.cases import load_spaces
from refcheck.cases.expand import expand
from refcheck.oracle.torch_reference import torch_results

mpmath.mp.dps = 50
EPS = float(np.finfo(np.float64).eps)


def _gelu(x: float, approximate: str) -> float:
    t = mpmath.mpf(x)
    if approximate == "tanh":
        u = mpmath.sqrt(2 / mpmath.pi) * (t + mpmath.mpf("0.044715") * t ** 3)
        return float(t / 2 * (1 + mpmath.tanh(u)))
    return float(t / 2 * mpmath.erfc(-t / mpmath.sqrt(2)))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("x", [-5.5, -7.0, -8.0])
def test_the_gelu_reference_keeps_every_digit_where_torch_cancels(approximate, x):
    exact = _gelu(x, approximate)
    inputs = {"input": np.array([x])}
    upstream = np.array([1.0])
    precise = torch_results("gelu", inputs, {"approximate": approximate}, upstream, "float64", precise=True)
    plain = torch_results("gelu", inputs, {"approximate": approximate}, upstream, "float64")
    # Within the function's own conditioning (about x**2 epsilons: a rounding of x moves erfc that much).
    assert abs(precise["output"][0] - exact) <= 64 * EPS * abs(exact)
    # torch's own float64 kernel (1 + erf, 1 + tanh) loses digits here: that is its error, not ours.
    assert abs(plain["output"][0] - exact) > 1e6 * EPS * abs(exact)
    assert torch.isfinite(torch.tensor(precise["grad_input"])).all()


def test_string_hyperparameters_named_none_are_in_the_sweep():
    """reduction='none' and gelu's approximate='none' are torch's values, not a missing value."""
    spaces = {space.layer: space for space in load_spaces(layers=["gelu", "l1_loss", "nll_loss", "kl_div"])}
    for layer, name in (("gelu", "approximate"), ("l1_loss", "reduction"), ("nll_loss", "reduction"),
                        ("kl_div", "reduction")):
        cases, coverage = expand(spaces[layer])
        assert any(case.hparam_map[name] == "none" for case in cases), layer
        assert not [item for item in coverage.infeasible if (name, "none") in item], layer
    assert math.isfinite(_gelu(-1.0, "none"))


def _tanh_derivative(x: float) -> float:
    return float(1 / mpmath.cosh(mpmath.mpf(x)) ** 2)


def _sigmoid_derivative(x: float) -> float:
    s = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
    return float(s * (1 - s))


@pytest.mark.parametrize("layer, derivative, x", [
    ("tanh", _tanh_derivative, -4.79), ("tanh", _tanh_derivative, 9.0),
    ("sigmoid", _sigmoid_derivative, 12.0), ("sigmoid", _sigmoid_derivative, 30.0),
])
def test_tanh_and_sigmoid_gradients_keep_every_digit_where_torch_cancels(layer, derivative, x):
    exact = derivative(x)
    inputs, upstream = {"input": np.array([x])}, np.array([1.0])
    precise = torch_results(layer, inputs, {}, upstream, "float64", precise=True)["grad_input"][0]
    plain = torch_results(layer, inputs, {}, upstream, "float64")["grad_input"][0]
    assert abs(precise - exact) <= 64 * EPS * exact
    assert abs(plain - exact) > 256 * EPS * exact  # torch's 1 - y**2 and y (1 - y) lose digits here
