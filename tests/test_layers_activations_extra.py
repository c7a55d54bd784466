"""Tests of refcheck.layers.activations_extra against torch autograd in float64."""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import helpers
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import numeric_gradient

from refcheck.layers import activations_extra as layers

DTYPES = [np.float32, np.float64]
# (rtol, atol) per dtype against a float64 reference; float64 is tight enough that a float64
# layer computing internally in float32 fails.
TOLERANCES = {np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-13)}
DTYPE_IDS = {"ids": lambda d: np.dtype(d).name}
assert_matches = partial(helpers.assert_matches, tolerances=TOLERANCES)


def run_layer(name: str, x: np.ndarray, dout: np.ndarray, kwargs: dict[str, Any]):
    """Forward and backward of one single-input layer; checks the tuple and no mutation."""
    x_before, dout_before = x.copy(), dout.copy()
    out, cache = getattr(layers, f"{name}_forward")(x, **kwargs)
    grads = getattr(layers, f"{name}_backward")(dout, cache)
    assert isinstance(grads, tuple) and len(grads) == 1, f"{name}: backward must return (dx,)"
    np.testing.assert_array_equal(x, x_before, err_msg=f"{name} mutated x")
    np.testing.assert_array_equal(dout, dout_before, err_msg=f"{name} mutated dout")
    return out, grads[0]


def torch_reference(torch_fn: Callable[..., torch.Tensor], x: np.ndarray, dout: np.ndarray,
                    kwargs: dict[str, Any]):
    """Output and input gradient from torch autograd in float64."""
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = torch_fn(tx, **kwargs)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), tx.grad.numpy()


def check_against_torch(name, torch_fn, x, dout, kwargs, dtype):
    out, grad_x = run_layer(name, x, dout, kwargs)
    expected_out, expected_grad = torch_reference(torch_fn, x, dout, kwargs)
    assert_matches(out, expected_out, dtype, f"{name}({kwargs}) output")
    assert_matches(grad_x, expected_grad, dtype, f"{name}({kwargs}) grad_input")
    return out, grad_x


# ---------------------------------------------------------------------------- erf and erfc


def test_erf_and_erfc_match_math_over_a_wide_range():
    x = np.concatenate([
        np.linspace(-30.0, 30.0, 6001),
        np.geomspace(1e-300, 0.5, 200),
        -np.geomspace(1e-300, 0.5, 200),
        [0.9999999, 1.0, 1.0000001, 1.9999999, 2.0, 3.9999999, 4.0, 6.5, -6.5, 26.5, 27.5],
    ])
    expected_erf = np.array([math.erf(v) for v in x])
    expected_erfc = np.array([math.erfc(v) for v in x])
    np.testing.assert_allclose(layers.erf(x), expected_erf, rtol=4e-15, atol=0)
    # erfc is compared relatively wherever it is a normal number (up to x ~ 26.5).
    normal = expected_erfc > np.finfo(np.float64).tiny
    np.testing.assert_allclose(layers.erfc(x)[normal], expected_erfc[normal], rtol=1e-14, atol=0)
    np.testing.assert_allclose(layers.erfc(x)[~normal], expected_erfc[~normal], atol=1e-320)


def test_erf_special_values_and_dtypes():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(layers.erf(x), [0.0, -0.0, 1.0, -1.0, np.nan])
    assert np.signbit(layers.erf(x)[1])
    np.testing.assert_array_equal(layers.erfc(x), [1.0, 1.0, 0.0, 2.0, np.nan])
    assert layers.erf(np.float32([0.5])).dtype == np.float32
    assert layers.erfc(np.array([1, 2])).dtype == np.float64
    np.testing.assert_allclose(layers.erf(np.float32(0.5)), math.erf(0.5), rtol=1e-7)


# ------------------------------------------------------------------------ element-wise layers

ELEMENTWISE = [
    ("gelu", F.gelu, {"approximate": "none"}),
    ("gelu", F.gelu, {"approximate": "tanh"}),
    ("elu", F.elu, {"alpha": 1.0}),
    ("elu", F.elu, {"alpha": 0.5}),
    ("elu", F.elu, {"alpha": -0.3}),
    ("selu", F.selu, {}),
    ("softplus", F.softplus, {"beta": 1.0, "threshold": 20.0}),
    ("softplus", F.softplus, {"beta": 2.0, "threshold": 5.0}),
    ("softplus", F.softplus, {"beta": 0.5, "threshold": 1.0}),
    ("silu", F.silu, {}),
    ("hardtanh", F.hardtanh, {"min_val": -1.0, "max_val": 1.0}),
    ("hardtanh", F.hardtanh, {"min_val": -0.5, "max_val": 2.0}),
    ("hardtanh", F.hardtanh, {"min_val": 0.25, "max_val": 0.25}),
]
ELEMENTWISE_IDS = [f"{n}-{'-'.join(str(v) for v in k.values())}" for n, _, k in ELEMENTWISE]


def with_special_values(rng: np.random.Generator, shape, scale: float, kwargs) -> np.ndarray:
    """Normal values times ``scale`` with zeros, kinks and (for large scale) saturation planted."""
    x = rng.standard_normal(shape) * scale
    flat = x.reshape(-1)
    flat[::7] = 0.0
    flat[1] = -0.0
    # The kinks: hardtanh's bounds, softplus's switch at beta * x == threshold (exact products).
    kinks = []
    if "min_val" in kwargs:
        kinks = [kwargs["min_val"], kwargs["max_val"]]
    if "threshold" in kwargs:
        kinks = [kwargs["threshold"] / kwargs["beta"]]
    flat[2:2 + len(kinks)] = kinks
    if scale > 1:
        flat[4:12] = [50.0, -50.0, 120.0, -120.0, 500.0, -500.0, 7.5, -7.5]
    return x


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("scale", [1.0, 4.0, 100.0], ids=["unit", "wide", "large"])
@pytest.mark.parametrize("name,torch_fn,kwargs", ELEMENTWISE, ids=ELEMENTWISE_IDS)
def test_elementwise_matches_torch(name, torch_fn, kwargs, scale, dtype):
    rng = np.random.default_rng(40)
    x = with_special_values(rng, (3, 4, 5), scale, kwargs).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    out, grad_x = check_against_torch(name, torch_fn, x, dout, kwargs, dtype)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad_x))


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
def test_gradients_at_the_kinks_equal_torch_exactly(dtype):
    dout = np.array([0.7, -1.3, 2.1, 0.4], dtype=dtype)
    cases = [
        # elu/selu take the exponential branch at 0: gradient alpha (* scale), not 1.
        ("elu", F.elu, np.array([-0.0, 0.0, 1e-30, -1e-30]), {"alpha": 2.0}),
        ("selu", F.selu, np.array([-0.0, 0.0, 1e-30, -1e-30]), {}),
        # hardtanh passes no gradient at either bound.
        ("hardtanh", F.hardtanh, np.array([-1.0, 1.0, 0.5, -2.0]),
         {"min_val": -1.0, "max_val": 1.0}),
        # softplus is still smooth at beta * x == threshold, linear just above.
        ("softplus", F.softplus, np.array([10.0, 10.5, 9.5, -10.0]),
         {"beta": 2.0, "threshold": 20.0}),
    ]
    for name, torch_fn, x, kwargs in cases:
        x = x.astype(dtype)
        out, grad_x = run_layer(name, x, dout, kwargs)
        tx = torch.tensor(x, requires_grad=True)  # torch at the same dtype
        tout = torch_fn(tx, **kwargs)
        tout.backward(torch.tensor(dout))
        np.testing.assert_allclose(grad_x, tx.grad.numpy(), rtol=2e-7, atol=0, err_msg=name)
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=2e-7, atol=0, err_msg=name)
    _, grad_x = run_layer("hardtanh", np.array([-1.0, 1.0], dtype=dtype), dout[:2], {})
    np.testing.assert_array_equal(grad_x, [0.0, 0.0])
    _, grad_x = run_layer("elu", np.array([0.0], dtype=dtype), dout[:1], {"alpha": 2.0})
    np.testing.assert_array_equal(grad_x, dout[:1] * dtype(2.0))


def test_hardtanh_nan_and_invalid_bounds_like_torch():
    x = np.array([np.nan, -3.0, 3.0])
    dout = np.array([3.0, 5.0, 7.0])
    out, grad_x = run_layer("hardtanh", x, dout, {})
    expected_out, expected_grad = torch_reference(F.hardtanh, x, dout, {})
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(grad_x, expected_grad)
    with pytest.raises(ValueError, match="min_val"):
        layers.hardtanh_forward(x, min_val=1.0, max_val=-1.0)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        layers.gelu_forward(np.zeros(3), approximate="sigmoid")


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
def test_saturation_without_warnings(dtype):
    # filterwarnings=error turns any overflow/underflow warning into a failure here.
    x = np.array([-1000.0, -40.0, 40.0, 1000.0], dtype=dtype)
    dout = np.array([0.5, -1.5, 0.25, 2.0], dtype=dtype)
    for name, torch_fn, kwargs in ELEMENTWISE:
        out, grad_x = check_against_torch(name, torch_fn, x, dout, kwargs, dtype)
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad_x)), name


# -------------------------------------------------------------------------------------- prelu

PRELU_CASES = [((2, 3, 4, 5), 3), ((2, 3, 4, 5), 1), ((4, 6), 6), ((4, 6), 1), ((2, 3, 7), 3),
               ((5,), 1), ((), 1)]
PRELU_IDS = [f"{'x'.join(map(str, s)) or 'scalar'}-w{c}" for s, c in PRELU_CASES]


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("shape,channels", PRELU_CASES, ids=PRELU_IDS)
def test_prelu_matches_torch(shape, channels, dtype):
    rng = np.random.default_rng(41)
    x = rng.standard_normal(shape)
    x.reshape(-1)[::4] = 0.0
    x = x.astype(dtype)
    weight = rng.uniform(-0.5, 0.5, channels).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    before = [x.copy(), weight.copy(), dout.copy()]
    out, cache = layers.prelu_forward(x, weight)
    grad_x, grad_weight = layers.prelu_backward(dout, cache)
    for original, now in zip(before, [x, weight, dout]):
        np.testing.assert_array_equal(now, original)

    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(weight, dtype=torch.float64, requires_grad=True)
    tout = F.prelu(tx, tw)
    tout.backward(torch.tensor(dout, dtype=torch.float64))
    assert_matches(out, tout.detach().numpy(), dtype, "prelu output")
    assert_matches(grad_x, tx.grad.numpy(), dtype, "prelu grad_input")
    assert_matches(grad_weight, tw.grad.numpy(), dtype, "prelu grad_weight")


def test_prelu_rejects_weight_of_wrong_size():
    with pytest.raises(ValueError, match="channels"):
        layers.prelu_forward(np.zeros((2, 3, 4)), np.ones(4))
    with pytest.raises(ValueError, match="channels"):
        layers.prelu_forward(np.zeros(3), np.ones(3))  # 1-D input has a single channel


# ------------------------------------------------------------------------- finite differences

FD_LAYERS = [(name, kwargs) for name, _, kwargs in ELEMENTWISE if name != "hardtanh"] + [
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0})
]


@pytest.mark.parametrize("name,kwargs", FD_LAYERS, ids=[f"{n}-{k}" for n, k in FD_LAYERS])
def test_backward_matches_finite_differences(name, kwargs):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((3, 4)) * 2
    # Away from the kinks (0, the hardtanh bounds, the softplus switch).
    kinks = [0.0, -0.5, 2.0, kwargs.get("threshold", 0.0) / kwargs.get("beta", 1.0)]
    for kink in kinks:
        x = np.where(np.abs(x - kink) < 0.05, kink + 0.3, x)
    dout = rng.standard_normal(x.shape)
    forward = getattr(layers, f"{name}_forward")
    _, grad_x = run_layer(name, x, dout, kwargs)

    def loss_of_x(value):
        return float(np.sum(forward(value, **kwargs)[0] * dout))

    np.testing.assert_allclose(grad_x, numeric_gradient(loss_of_x, x), rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------- planted mistakes


def _wrong_hardtanh_backward(dout, cache):
    """Inclusive bounds: passes the gradient at x == min_val and x == max_val."""
    x, low, high = cache
    return (np.where((x < low) | (x > high), 0.0, dout),)


def _wrong_elu_backward(dout, cache):
    """Positive branch at 0: gradient 1 instead of alpha at x == 0."""
    x, alpha, _ = cache
    return (np.where(x >= 0, dout, dout * alpha * np.exp(np.minimum(x, 0.0))),)


def _wrong_softplus_backward(dout, cache):
    """Linear branch taken at beta * x >= threshold (torch switches strictly above)."""
    scaled, linear = cache
    at_switch = linear | (scaled == 20.0)
    return (np.where(at_switch, dout, dout / (1.0 + np.exp(-scaled))),)


_real_gelu_forward = layers.gelu_forward


def _wrong_gelu_forward(x, *, approximate="none"):
    """Always the tanh approximation, even when the exact form is asked for."""
    return _real_gelu_forward(x, approximate="tanh")


PLANTED = [
    ("hardtanh", F.hardtanh, {}, [-1.0, 1.0, 0.3], "backward", _wrong_hardtanh_backward),
    ("elu", F.elu, {"alpha": 2.0}, [0.0, -1.0, 1.0], "backward", _wrong_elu_backward),
    ("softplus", F.softplus, {}, [20.0, 19.0, 21.0], "backward", _wrong_softplus_backward),
    ("gelu", F.gelu, {}, [0.5, -1.5, 3.0], "forward", _wrong_gelu_forward),
]


@pytest.mark.parametrize("name,torch_fn,kwargs,values,which,wrong", PLANTED,
                         ids=[p[0] for p in PLANTED])
def test_planted_mistake_is_caught(name, torch_fn, kwargs, values, which, wrong, monkeypatch):
    x = np.array(values)
    dout = np.array([0.7, -1.3, 2.1])
    check_against_torch(name, torch_fn, x, dout, kwargs, np.float64)  # the real one passes
    monkeypatch.setattr(layers, f"{name}_{which}", wrong)
    with pytest.raises(AssertionError):
        check_against_torch(name, torch_fn, x, dout, kwargs, np.float64)
