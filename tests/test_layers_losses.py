"""Tests of refcheck.layers.losses against torch autograd in float64."""
from __future__ import annotations

from functools import partial

import helpers
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import numeric_gradient

from refcheck import layers as losses  # every built-in loss, wherever its module

DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum"]
# (rtol, atol) per dtype against a float64 reference; float64 is tight enough that a float64
# layer computing internally in float32 fails.
TOLERANCES = {np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-13)}
DTYPE_IDS = {"ids": lambda d: np.dtype(d).name}
TORCH_LOSSES = {
    "mse_loss": F.mse_loss,
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "cross_entropy": F.cross_entropy,
}
assert_matches = partial(helpers.assert_matches, tolerances=TOLERANCES)


def run_loss(name: str, input: np.ndarray, target: np.ndarray, reduction: str, dout: np.ndarray):
    """Forward and backward of one loss; also checks that no argument was mutated."""
    before = [input.copy(), target.copy(), dout.copy()]
    loss, cache = getattr(losses, f"{name}_forward")(input, target, reduction=reduction)
    grad_input = getattr(losses, f"{name}_backward")(dout, cache)
    if isinstance(grad_input, tuple):  # the contract allows (grad_input,) or grad_input
        (grad_input,) = grad_input
    for original, now, what in zip(before, [input, target, dout], ["input", "target", "dout"]):
        np.testing.assert_array_equal(now, original, err_msg=f"{name} mutated {what}")
    return loss, grad_input


def torch_reference(name: str, input: np.ndarray, target: np.ndarray, reduction: str, dout):
    """Loss and input gradient from torch autograd in float64."""
    tinput = torch.tensor(input, dtype=torch.float64, requires_grad=True)
    ttarget = torch.tensor(target, dtype=torch.int64 if name == "cross_entropy" else torch.float64)
    loss = TORCH_LOSSES[name](tinput, ttarget, reduction=reduction)
    loss.backward(torch.tensor(dout, dtype=torch.float64))
    return loss.detach().numpy(), tinput.grad.numpy()


def check_against_torch(name, input, target, reduction, dtype, seed):
    rng = np.random.default_rng(seed)
    # A random, signed upstream gradient: a wrong scale or sign cannot hide behind 1.
    dout = np.asarray(rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0]), dtype=dtype)
    loss, grad_input = run_loss(name, input, target, reduction, dout)
    expected_loss, expected_grad = torch_reference(name, input, target, reduction, dout)
    assert_matches(loss, expected_loss, dtype, f"{name}({reduction}) loss")
    assert_matches(grad_input, expected_grad, dtype, f"{name}({reduction}) grad_input")
    return loss, grad_input, dout


# ------------------------------------------------------------------------------------ mse_loss


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4)], ids=lambda s: "x".join(map(str, s)))
def test_mse_loss_matches_torch(shape, reduction, dtype):
    rng = np.random.default_rng(20)
    input = rng.standard_normal(shape).astype(dtype)
    target = rng.standard_normal(shape).astype(dtype)
    check_against_torch("mse_loss", input, target, reduction, dtype, seed=21)


# ------------------------------------------------------------------------ binary_cross_entropy


def _probabilities_with_edges(rng: np.random.Generator, dtype: type, soft: bool):
    """Probabilities with exact 0s and 1s (and near them), against hard or soft targets."""
    input = rng.uniform(0.02, 0.98, (4, 6))
    target = rng.uniform(0.0, 1.0, (4, 6)) if soft else rng.integers(0, 2, (4, 6)).astype(float)
    # Row 0: p = 0 against t = 0, 1 and soft; row 1: p = 1 likewise; row 2: p near the edges,
    # where p * (1 - p) falls below the 1e-12 floor of the gradient.
    input[0, :3], target[0, :3] = 0.0, [0.0, 1.0, 0.3]
    input[1, :3], target[1, :3] = 1.0, [0.0, 1.0, 0.7]
    input[2, :2] = [1e-13, 1e-30]
    return input.astype(dtype), target.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_binary_cross_entropy_matches_torch_at_zero_and_one(soft, reduction, dtype):
    rng = np.random.default_rng(22)
    input, target = _probabilities_with_edges(rng, dtype, soft)
    loss, grad_input, dout = check_against_torch(
        "binary_cross_entropy", input, target, reduction, dtype, seed=23
    )
    assert np.isfinite(loss) and np.all(np.isfinite(grad_input))


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_edge_values_by_hand(reduction, dtype):
    # p:      0    0    0    1    1    1
    # t:      0    1   0.3   0    1   0.7
    # loss:   0   100  30   100   0   30     (each log clamped at -100)
    # grad: (p - t) / max(p (1 - p), eps), eps = float32(1e-12) even for float64 (as torch)
    input = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], dtype=dtype)
    target = np.array([0.0, 1.0, 0.3, 0.0, 1.0, 0.7], dtype=dtype)
    dout = np.array(-1.5, dtype=dtype)
    loss, grad_input = run_loss("binary_cross_entropy", input, target, reduction, dout)
    count = 6 if reduction == "mean" else 1
    np.testing.assert_allclose(loss, 260.0 / count, rtol=1e-6)
    eps = np.float32(1e-12).astype(dtype)
    expected = (dout * (input - target) / eps / dtype(count)).astype(dtype)
    np.testing.assert_array_equal(grad_input, expected)
    # torch at the same dtype agrees bit for bit on these values.
    tinput = torch.tensor(input, requires_grad=True)
    F.binary_cross_entropy(tinput, torch.tensor(target), reduction=reduction).backward(
        torch.tensor(dout)
    )
    np.testing.assert_array_equal(grad_input, tinput.grad.numpy())


def test_binary_cross_entropy_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match="input"):
        losses.binary_cross_entropy_forward(np.array([1.5]), np.array([1.0]), reduction="mean")
    with pytest.raises(ValueError, match="target"):
        losses.binary_cross_entropy_forward(np.array([0.5]), np.array([-0.5]), reduction="sum")


# ------------------------------------------------------------ binary_cross_entropy_with_logits


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scale", [1.0, 200.0], ids=["unit", "large"])
def test_binary_cross_entropy_with_logits_matches_torch(scale, reduction, dtype):
    rng = np.random.default_rng(24)
    input = rng.standard_normal((4, 5)) * scale
    target = rng.uniform(0.0, 1.0, (4, 5))
    target[0] = [0.0, 1.0, 0.0, 1.0, 0.5]
    if scale > 1:
        # Logits of magnitude 50..500 of both signs, against hard and soft targets.
        input[0] = [500.0, -500.0, -50.0, 50.0, -120.0]
    check_against_torch(
        "binary_cross_entropy_with_logits",
        input.astype(dtype),
        target.astype(dtype),
        reduction,
        dtype,
        seed=25,
    )


# -------------------------------------------------------------------------------- cross_entropy


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scale", [1.0, 300.0], ids=["unit", "large"])
def test_cross_entropy_matches_torch(scale, reduction, dtype):
    rng = np.random.default_rng(26)
    input = (rng.standard_normal((6, 5)) * scale).astype(dtype)
    if scale > 1:
        input[0] = [500.0, -500.0, 450.0, -50.0, 0.0]
    target = rng.integers(0, 5, 6).astype(np.int64)
    target[0] = 1  # the class whose logit is -500: a loss near 1000
    check_against_torch("cross_entropy", input, target, reduction, dtype, seed=27)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_ignores_minus_100_like_torch(reduction):
    rng = np.random.default_rng(28)
    input = rng.standard_normal((5, 4))
    target = np.array([0, -100, 3, -100, 2], dtype=np.int64)
    _, grad_input, _ = check_against_torch(
        "cross_entropy", input, target, reduction, np.float64, seed=29
    )
    np.testing.assert_array_equal(grad_input[[1, 3]], 0.0)


def test_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradient():
    input = np.random.default_rng(30).standard_normal((3, 4)).astype(np.float32)
    target = np.full(3, -100, dtype=np.int64)
    dout = np.array(0.75, dtype=np.float32)
    loss, grad_input = run_loss("cross_entropy", input, target, "mean", dout)
    expected_loss, expected_grad = torch_reference("cross_entropy", input, target, "mean", dout)
    assert np.isnan(loss) and np.isnan(expected_loss)
    np.testing.assert_array_equal(grad_input, expected_grad)
    np.testing.assert_array_equal(grad_input, np.zeros((3, 4), dtype=np.float32))


def test_cross_entropy_rejects_bad_targets():
    input = np.zeros((3, 4))
    with pytest.raises(IndexError, match="out of bounds"):
        losses.cross_entropy_forward(input, np.array([0, 4, 1]), reduction="mean")
    with pytest.raises(IndexError, match="out of bounds"):
        losses.cross_entropy_forward(input, np.array([0, -1, 1]), reduction="mean")
    with pytest.raises(ValueError, match="integer"):
        losses.cross_entropy_forward(input, np.array([0.0, 1.0, 2.0]), reduction="mean")
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        losses.cross_entropy_forward(input, np.array([0, 1]), reduction="mean")


# ------------------------------------------------------------------------- shared contract


@pytest.mark.parametrize("name", sorted(TORCH_LOSSES))
def test_unknown_reduction_is_rejected(name):
    target = np.array([0, 1]) if name == "cross_entropy" else np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match="reduction"):
        getattr(losses, f"{name}_forward")(np.full((2, 2), 0.5), target, reduction="avg")


def _fd_case(name: str, rng: np.random.Generator):
    """Float64 inputs away from kinks and clamps, where the central difference is accurate."""
    if name == "cross_entropy":
        return rng.standard_normal((4, 3)), rng.integers(0, 3, 4).astype(np.int64)
    if name == "binary_cross_entropy":
        return rng.uniform(0.1, 0.9, (3, 4)), rng.uniform(0.0, 1.0, (3, 4))
    return rng.standard_normal((3, 4)), rng.uniform(0.0, 1.0, (3, 4))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(TORCH_LOSSES))
def test_backward_matches_finite_differences(name, reduction):
    rng = np.random.default_rng(31)
    input, target = _fd_case(name, rng)
    dout = np.array(-1.7)
    forward = getattr(losses, f"{name}_forward")
    _, grad_input = run_loss(name, input, target, reduction, dout)

    def loss_of_input(value):
        return float(forward(value, target, reduction=reduction)[0]) * float(dout)

    np.testing.assert_allclose(
        grad_input, numeric_gradient(loss_of_input, input), rtol=1e-6, atol=1e-8
    )
