"""Tests of refcheck.layers.dense (linear, flatten) against torch autograd in float64."""
from __future__ import annotations

from functools import partial

import helpers
import numpy as np
import pytest
import torch
from helpers import numeric_gradient

from refcheck.layers.dense import (
    flatten_backward,
    flatten_forward,
    linear_backward,
    linear_forward,
)

DTYPES = [np.float32, np.float64]
# (rtol, atol) per dtype against a float64 reference. float64 is tight enough that a float64
# layer computing internally in float32 fails.
TOLERANCES = {np.float32: (1e-5, 1e-5), np.float64: (1e-10, 1e-12)}
assert_matches = partial(helpers.assert_matches, tolerances=TOLERANCES)


# ---------------------------------------------------------------------------------------- linear

LINEAR_SHAPES = [(4, 5), (2, 3, 5), (2, 2, 3, 5), (5,)]  # x shapes; in_features = 5


def _linear_case(x_shape: tuple[int, ...], with_bias: bool, dtype: type, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal((3, x_shape[-1])).astype(dtype)
    bias = rng.standard_normal(3).astype(dtype) if with_bias else None
    dout = rng.standard_normal(x_shape[:-1] + (3,)).astype(dtype)
    return x, weight, bias, dout


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("x_shape", LINEAR_SHAPES, ids=lambda s: "x" + "x".join(map(str, s)))
def test_linear_matches_torch(x_shape, with_bias, dtype):
    x, weight, bias, dout = _linear_case(x_shape, with_bias, dtype, seed=1)
    originals = [a.copy() for a in (x, weight, dout)] + ([bias.copy()] if with_bias else [])

    out, cache = linear_forward(x, weight, bias)
    grad_x, grad_weight, grad_bias = linear_backward(dout, cache)

    tx, tw = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, weight))
    tb = torch.tensor(bias, dtype=torch.float64, requires_grad=True) if with_bias else None
    tout = torch.nn.functional.linear(tx, tw, tb)
    tout.backward(torch.tensor(dout, dtype=torch.float64))

    assert_matches(out, tout.detach().numpy(), dtype, "output")
    assert_matches(grad_x, tx.grad.numpy(), dtype, "grad_input")
    assert_matches(grad_weight, tw.grad.numpy(), dtype, "grad_weight")
    if with_bias:
        assert_matches(grad_bias, tb.grad.numpy(), dtype, "grad_bias")
    else:
        assert grad_bias is None
    for before, after in zip(originals, [x, weight, dout] + ([bias] if with_bias else [])):
        np.testing.assert_array_equal(after, before, err_msg="an input was mutated")


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
def test_linear_backward_matches_finite_differences(with_bias):
    x, weight, bias, dout = _linear_case((2, 3, 4), with_bias, np.float64, seed=2)
    _, cache = linear_forward(x, weight, bias)
    grad_x, grad_weight, grad_bias = linear_backward(dout, cache)

    def loss_of_x(value):
        return float(np.sum(linear_forward(value, weight, bias)[0] * dout))

    def loss_of_weight(value):
        return float(np.sum(linear_forward(x, value, bias)[0] * dout))

    np.testing.assert_allclose(grad_x, numeric_gradient(loss_of_x, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        grad_weight, numeric_gradient(loss_of_weight, weight), rtol=1e-6, atol=1e-8
    )
    if with_bias:

        def loss_of_bias(value):
            return float(np.sum(linear_forward(x, weight, value)[0] * dout))

        np.testing.assert_allclose(
            grad_bias, numeric_gradient(loss_of_bias, bias), rtol=1e-6, atol=1e-8
        )


def test_linear_rejects_mismatched_features():
    with pytest.raises(ValueError, match="incompatible"):
        linear_forward(np.zeros((2, 4)), np.zeros((3, 5)), None)
    with pytest.raises(ValueError, match="bias"):
        linear_forward(np.zeros((2, 5)), np.zeros((3, 5)), np.zeros(4))


# --------------------------------------------------------------------------------------- flatten

FLATTEN_DIMS = [
    (1, -1), (0, -1), (1, 2), (-3, -2), (2, 2), (0, 0), (-1, -1), (-4, 1), (3, 3), (0, 2)
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("start_dim,end_dim", FLATTEN_DIMS, ids=lambda d: str(d))
def test_flatten_matches_torch(start_dim, end_dim, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    x_before = x.copy()
    expected = torch.flatten(
        torch.tensor(x, dtype=torch.float64, requires_grad=True), start_dim, end_dim
    )
    dout = rng.standard_normal(tuple(expected.shape)).astype(dtype)
    dout_before = dout.copy()

    out, cache = flatten_forward(x, start_dim=start_dim, end_dim=end_dim)
    grad_x = flatten_backward(dout, cache)

    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch.flatten(tx, start_dim, end_dim).backward(torch.tensor(dout, dtype=torch.float64))
    assert_matches(out, expected.detach().numpy(), dtype, "output")
    assert_matches(grad_x, tx.grad.numpy(), dtype, "grad_input")
    # Fresh arrays: writing into the results must not reach the caller's arrays.
    assert not np.shares_memory(out, x)
    assert not np.shares_memory(grad_x, dout)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dout, dout_before)


def test_flatten_of_a_scalar_gives_one_element_like_torch():
    out, cache = flatten_forward(np.array(2.5, dtype=np.float32), start_dim=0, end_dim=-1)
    assert out.shape == tuple(torch.flatten(torch.tensor(2.5)).shape) == (1,)
    grad_x = flatten_backward(np.array([4.0], dtype=np.float32), cache)
    assert grad_x.shape == () and grad_x.dtype == np.float32 and grad_x == 4.0


def test_flatten_backward_matches_finite_differences():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 2))
    out, cache = flatten_forward(x, start_dim=-2, end_dim=-1)
    dout = rng.standard_normal(out.shape)

    def loss_of_x(value):
        return float(np.sum(flatten_forward(value, start_dim=-2, end_dim=-1)[0] * dout))

    np.testing.assert_allclose(
        flatten_backward(dout, cache), numeric_gradient(loss_of_x, x), rtol=1e-6, atol=1e-8
    )


def test_flatten_rejects_bad_dims_like_torch():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="cannot come after"):
        flatten_forward(x, start_dim=2, end_dim=1)
    with pytest.raises(ValueError, match="cannot come after"):
        flatten_forward(x, start_dim=-1, end_dim=0)
    with pytest.raises(IndexError, match="out of range"):
        flatten_forward(x, start_dim=0, end_dim=3)
    with pytest.raises(IndexError, match="out of range"):
        flatten_forward(x, start_dim=-4, end_dim=-1)
