"""Tests of refcheck.layers.activations against torch autograd in float64."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import helpers
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import numeric_gradient

from refcheck.layers import activations

DTYPES = [np.float32, np.float64]
# (rtol, atol) per dtype against a float64 reference; float64 is tight enough that a float64
# layer computing internally in float32 fails.
TOLERANCES = {np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-13)}
DTYPE_IDS = {"ids": lambda d: np.dtype(d).name}
assert_matches = partial(helpers.assert_matches, tolerances=TOLERANCES)


def run_layer(name: str, x: np.ndarray, dout: np.ndarray, kwargs: dict[str, Any]):
    """Forward and backward of one layer; also checks that neither input was mutated."""
    x_before, dout_before = x.copy(), dout.copy()
    forward = getattr(activations, f"{name}_forward")
    backward = getattr(activations, f"{name}_backward")
    out, cache = forward(x, **kwargs)
    grad_x = backward(dout, cache)
    np.testing.assert_array_equal(x, x_before, err_msg=f"{name} forward/backward mutated x")
    np.testing.assert_array_equal(dout, dout_before, err_msg=f"{name} backward mutated dout")
    return out, grad_x


def torch_reference(
    torch_fn: Callable[..., torch.Tensor], x: np.ndarray, dout: np.ndarray, kwargs: dict[str, Any]
):
    """Output and input gradient from torch autograd in float64."""
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = torch_fn(tx, **kwargs)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), tx.grad.numpy()


def with_special_values(rng: np.random.Generator, shape, scale: float) -> np.ndarray:
    """Normal values times ``scale`` with exact zeros (and a negative zero) planted."""
    x = rng.standard_normal(shape) * scale
    flat = x.reshape(-1)
    flat[::5] = 0.0
    flat[1] = -0.0
    return x


# ----------------------------------------------------------------------------- element-wise

ELEMENTWISE = [
    ("relu", F.relu, {}),
    ("leaky_relu", F.leaky_relu, {"negative_slope": 0.01}),
    ("leaky_relu", F.leaky_relu, {"negative_slope": 0.2}),
    ("sigmoid", torch.sigmoid, {}),
    ("tanh", torch.tanh, {}),
]
ELEMENTWISE_IDS = [f"{name}{kwargs.get('negative_slope', '')}" for name, _, kwargs in ELEMENTWISE]


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("scale", [1.0, 200.0], ids=["unit", "large"])
@pytest.mark.parametrize("name,torch_fn,kwargs", ELEMENTWISE, ids=ELEMENTWISE_IDS)
def test_elementwise_matches_torch(name, torch_fn, kwargs, scale, dtype):
    rng = np.random.default_rng(10)
    x = with_special_values(rng, (3, 4, 5), scale).astype(dtype)
    if scale > 1:
        # Saturation: magnitudes from 50 to 500 of both signs, where naive exp() overflows.
        x.reshape(-1)[2:8] = [50.0, -50.0, 120.0, -120.0, 500.0, -500.0]
    dout = rng.standard_normal(x.shape).astype(dtype)

    out, grad_x = run_layer(name, x, dout, kwargs)
    expected_out, expected_grad = torch_reference(torch_fn, x, dout, kwargs)
    assert_matches(out, expected_out, dtype, f"{name} output")
    assert_matches(grad_x, expected_grad, dtype, f"{name} grad_input")


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
def test_relu_gradient_is_zero_at_zero(dtype):
    x = np.array([-1.0, -0.0, 0.0, 2.0], dtype=dtype)
    dout = np.array([0.7, -1.3, 2.1, 0.4], dtype=dtype)
    _, grad_x = run_layer("relu", x, dout, {})
    np.testing.assert_array_equal(grad_x, np.array([0.0, 0.0, 0.0, 0.4], dtype=dtype))
    _, expected_grad = torch_reference(F.relu, x, dout, {})
    np.testing.assert_array_equal(grad_x, expected_grad.astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("negative_slope", [0.01, 0.2, -0.5])
def test_leaky_relu_gradient_is_slope_at_zero(negative_slope, dtype):
    x = np.array([-1.0, -0.0, 0.0, 2.0], dtype=dtype)
    dout = np.array([0.7, -1.3, 2.1, 0.4], dtype=dtype)
    _, grad_x = run_layer("leaky_relu", x, dout, {"negative_slope": negative_slope})
    slope = dtype(negative_slope)
    expected = np.array([0.7 * slope, -1.3 * slope, 2.1 * slope, 0.4], dtype=dtype)
    np.testing.assert_array_equal(grad_x, expected)
    _, expected_grad = torch_reference(F.leaky_relu, x, dout, {"negative_slope": negative_slope})
    assert_matches(grad_x, expected_grad, dtype, "leaky_relu grad_input")


def test_relu_passes_gradient_through_nan_like_torch():
    x = np.array([np.nan, -1.0, 1.0])
    dout = np.array([3.0, 5.0, 7.0])
    out, grad_x = run_layer("relu", x, dout, {})
    expected_out, expected_grad = torch_reference(F.relu, x, dout, {})
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(grad_x, expected_grad)
    np.testing.assert_array_equal(grad_x, [3.0, 0.0, 7.0])


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
def test_sigmoid_saturates_without_overflow(dtype):
    # filterwarnings=error turns an overflow in exp() into a failure here.
    x = np.array([-1000.0, -500.0, 500.0, 1000.0], dtype=dtype)
    dout = np.array([0.5, -1.5, 0.25, 2.0], dtype=dtype)
    out, grad_x = run_layer("sigmoid", x, dout, {})
    expected_out, expected_grad = torch_reference(torch.sigmoid, x, dout, {})
    assert_matches(out, expected_out, dtype, "sigmoid output")
    assert_matches(grad_x, expected_grad, dtype, "sigmoid grad_input")
    # exp(-1000) underflows to 0 in both dtypes and 1 - 1e-218 rounds to 1.
    np.testing.assert_array_equal(out[[0, 2, 3]], np.array([0.0, 1.0, 1.0], dtype=dtype))


# ------------------------------------------------------------------------------------ softmax

SOFTMAX_CASES = [
    ((3, 5), 1),
    ((3, 5), -1),
    ((3, 5), 0),
    ((2, 3, 4, 5), 1),
    ((2, 3, 4, 5), -1),
    ((2, 3, 4, 5), 2),
]
SOFTMAX_CASE_IDS = [f"{'x'.join(map(str, shape))}-dim{dim}" for shape, dim in SOFTMAX_CASES]
SOFTMAX_LAYERS = [("softmax", F.softmax), ("log_softmax", F.log_softmax)]


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("scale", [1.0, 300.0], ids=["unit", "large"])
@pytest.mark.parametrize("shape,dim", SOFTMAX_CASES, ids=SOFTMAX_CASE_IDS)
@pytest.mark.parametrize("name,torch_fn", SOFTMAX_LAYERS, ids=[n for n, _ in SOFTMAX_LAYERS])
def test_softmax_family_matches_torch(name, torch_fn, shape, dim, scale, dtype):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    if scale > 1:
        # Make sure the slices along dim hold both very large and very negative logits.
        x.reshape(-1)[:4] = [500.0, -500.0, 450.0, -50.0]
    dout = rng.standard_normal(shape).astype(dtype)

    out, grad_x = run_layer(name, x, dout, {"dim": dim})
    expected_out, expected_grad = torch_reference(torch_fn, x, dout, {"dim": dim})
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad_x))
    assert_matches(out, expected_out, dtype, f"{name} output")
    assert_matches(grad_x, expected_grad, dtype, f"{name} grad_input")


# --------------------------------------------------------------------- finite differences

FD_LAYERS = [
    ("relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("softmax", {"dim": 1}),
    ("softmax", {"dim": -1}),
    ("log_softmax", {"dim": 1}),
    ("log_softmax", {"dim": 0}),
]


@pytest.mark.parametrize("name,kwargs", FD_LAYERS, ids=[f"{n}-{k}" for n, k in FD_LAYERS])
def test_backward_matches_finite_differences(name, kwargs):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 4, 2))
    # Keep relu/leaky_relu inputs away from the kink, where the derivative is undefined.
    x = np.where(np.abs(x) < 0.1, 0.5, x)
    dout = rng.standard_normal(x.shape)
    forward = getattr(activations, f"{name}_forward")
    _, grad_x = run_layer(name, x, dout, kwargs)

    def loss_of_x(value):
        return float(np.sum(forward(value, **kwargs)[0] * dout))

    np.testing.assert_allclose(grad_x, numeric_gradient(loss_of_x, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name, x, exact", [
    # 1 / cosh(x)**2 and sigmoid(x) sigmoid(-x), worked out at 50 digits (mpmath).
    ("tanh", -4.79, 0.000276349599758055), ("tanh", 9.0, 6.091991712323229e-08),
    ("sigmoid", 12.0, 6.1441368513331755e-06), ("sigmoid", 30.0, 9.357622968838423e-14),
])
def test_tanh_and_sigmoid_gradients_do_not_cancel_where_the_output_nears_one(name, x, exact):
    forward, backward = getattr(activations, f"{name}_forward"), getattr(activations, f"{name}_backward")
    _, cache = forward(np.array([x]))
    grad = backward(np.array([1.0]), cache)
    assert abs(grad[0] - exact) <= 16 * np.finfo(np.float64).eps * exact
