"""Tests of dropout with an explicit mask.

Two references: (1) torch's own ``F.dropout``, whose random mask is recovered by drawing it
again from the same seed (CPU dropout draws ``bernoulli_(1 - p)`` on a tensor of the input's
shape, so dropping a tensor of ones after the same ``manual_seed`` shows which elements were
kept); (2) where no torch draw can be replayed (a mask chosen by the test), the formula
``x * mask / (1 - p)`` computed with torch ops under autograd.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from refcheck.layers.dropout import dropout_backward, dropout_forward

PROBABILITIES = [0.0, 0.1, 0.5, 0.9, 0.999, 1.0]
TOLERANCES = {np.float64: (1e-12, 0.0), np.float32: (1e-6, 0.0)}


def _torch_dropout_with_mask(x: np.ndarray, p: float, seed: int, dout: np.ndarray):
    """torch's real dropout: (out, grad_input, keep mask it drew)."""
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    torch.manual_seed(seed)
    probe = F.dropout(torch.ones(x.shape, dtype=dtype), p=p, training=True)
    torch.manual_seed(seed)
    leaf = torch.tensor(x, requires_grad=True)
    out = F.dropout(leaf, p=p, training=True)
    out.backward(torch.tensor(dout))
    mask = (probe != 0).numpy() if p < 1 else np.ones(x.shape, dtype=bool)
    return out.detach().numpy(), leaf.grad.numpy(), mask


def _formula_reference(x, mask, p, dout):
    """``x * mask / (1 - p)`` with torch ops under autograd, in float64."""
    leaf = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = leaf * torch.tensor(mask, dtype=torch.float64) / (1 - p)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), leaf.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", PROBABILITIES)
@pytest.mark.parametrize("shape", [(7,), (4, 5), (2, 3, 4, 3)])
def test_matches_torch_dropout_with_its_own_mask(shape, p, dtype) -> None:
    rng = np.random.default_rng(len(shape) * 100 + int(p * 1000))
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    expected_out, expected_grad, mask = _torch_dropout_with_mask(x, p, seed=17, dout=dout)
    out, cache = dropout_forward(x, mask, p=p, training=True)
    (grad_input,) = dropout_backward(dout, cache)
    rtol, atol = TOLERANCES[dtype]
    for name, actual, expected in (("output", out, expected_out),
                                   ("grad_input", grad_input, expected_grad)):
        assert actual.dtype == dtype, name
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=f"{name} p={p}")
    if 0 < p < 1 and x.size > 10:
        assert 0 < mask.sum() < mask.size or p > 0.99  # the replayed mask is a real draw


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75, 0.999])
def test_matches_formula_reference_for_a_chosen_mask(p) -> None:
    rng = np.random.default_rng(5)
    x, dout = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    mask = rng.random((3, 6)) < 0.5
    mask[0] = True  # a row kept whole and a row dropped whole
    mask[1] = False
    out, cache = dropout_forward(x, mask, p=p, training=True)
    (grad_input,) = dropout_backward(dout, cache)
    expected_out, expected_grad = _formula_reference(x, mask, p, dout)
    np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=0)
    np.testing.assert_allclose(grad_input, expected_grad, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(out[1], 0.0)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_eval_mode_is_identity_and_ignores_mask(p) -> None:
    rng = np.random.default_rng(6)
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    mask = np.zeros((4, 3))
    leaf = torch.tensor(x, requires_grad=True)
    expected = F.dropout(leaf, p=p, training=False)
    expected.backward(torch.tensor(dout))
    out, cache = dropout_forward(x, mask, p=p, training=False)
    (grad_input,) = dropout_backward(dout, cache)
    np.testing.assert_array_equal(out, expected.detach().numpy())
    np.testing.assert_array_equal(grad_input, leaf.grad.numpy())


def test_p_zero_ignores_mask_like_torch() -> None:
    x = np.arange(6.0).reshape(2, 3)
    out, cache = dropout_forward(x, np.zeros((2, 3)), p=0.0, training=True)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(np.ones((2, 3)), cache)[0], 1.0)


def test_p_one_gives_signed_zeros_and_nan_like_torch() -> None:
    x = np.array([1.5, -2.0, np.nan, 0.0])
    expected = F.dropout(torch.tensor(x), p=1.0, training=True).numpy()
    out, cache = dropout_forward(x, np.ones(4), p=1.0, training=True)
    np.testing.assert_array_equal(out, expected)  # NaN compares equal here
    np.testing.assert_array_equal(np.signbit(out), np.signbit(expected))
    np.testing.assert_array_equal(dropout_backward(np.full(4, 3.0), cache)[0], 0.0)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_probability_outside_unit_interval_raises_like_torch(p) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(torch.zeros(3), p=p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        dropout_forward(np.zeros(3), np.ones(3), p=p, training=True)


def test_mask_is_checked() -> None:
    with pytest.raises(ValueError, match="shape"):
        dropout_forward(np.zeros(3), np.ones(4), p=0.5, training=True)
    with pytest.raises(ValueError, match="0 .drop. or 1"):
        dropout_forward(np.zeros(3), np.array([1.0, 0.5, 0.0]), p=0.5, training=True)


def test_inputs_not_mutated_and_results_fresh() -> None:
    rng = np.random.default_rng(8)
    x, dout, mask = rng.standard_normal(5), rng.standard_normal(5), rng.random(5) < 0.5
    for array in (x, dout, mask):
        array.flags.writeable = False
    for p, training in ((0.3, True), (0.0, True), (0.3, False)):
        out, cache = dropout_forward(x, mask, p=p, training=training)
        (grad_input,) = dropout_backward(dout, cache)
        for result in (out, grad_input):
            assert not any(np.shares_memory(result, a) for a in (x, dout, mask))


# --- planted mistakes ------------------------------------------------------------------------

def _scaled_by_p(x, mask, *, p, training):
    scale = mask * p  # should be mask / (1 - p)
    return x * scale, scale


def _backward_unscaled(dout, cache):
    return (dout * (cache != 0),)  # forgets the 1 / (1 - p) factor


def _backward_scaled(dout, cache):
    return (dout * cache,)


@pytest.mark.parametrize(
    "forward, backward, wrong",
    [
        (_scaled_by_p, _backward_scaled, {"output", "grad_input"}),
        (lambda x, mask, *, p, training: (x * mask / (1 - p), mask / (1 - p)),
         _backward_unscaled, {"grad_input"}),
        # the control: the same shape of code, right
        (lambda x, mask, *, p, training: (x * mask / (1 - p), mask / (1 - p)),
         _backward_scaled, set()),
    ],
    ids=["forward-scales-by-p", "backward-not-scaled", "control"],
)
def test_planted_mistake_is_caught(forward, backward, wrong) -> None:
    p, seed = 0.3, 23
    rng = np.random.default_rng(seed)
    x, dout = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    expected_out, expected_grad, mask = _torch_dropout_with_mask(x, p, seed, dout)
    mask = mask.astype(np.float64)
    out, cache = forward(x, mask, p=p, training=True)
    (grad_input,) = backward(dout, cache)
    found = {
        name for name, actual, expected in (("output", out, expected_out),
                                            ("grad_input", grad_input, expected_grad))
        if not np.allclose(actual, expected, rtol=1e-12, atol=0)
    }
    assert found == wrong
