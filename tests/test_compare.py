"""The comparison of one tensor and the tolerance rule, on hand-made and real layer results."""
from __future__ import annotations

import numpy as np
import pytest

from refcheck.compare import DEFAULT_TOLERANCE, compare_tensor, relative_error_eps, tolerance_eps
from refcheck.layers import conv2d_backward, conv2d_forward
from refcheck.oracle import torch_results


def test_identical_tensor_passes_with_zero_error():
    reference = np.arange(6.0).reshape(2, 3)
    outcome = compare_tensor("output", reference.copy(), reference, reference, "float64")
    assert outcome.passed and outcome.error_eps == 0.0 and outcome.max_abs_error == 0.0


def test_error_is_in_eps_relative_to_the_largest_reference_value():
    reference = np.array([[4.0, -8.0], [1.0, 2.0]])
    result = reference.copy()
    result[1, 0] += 8.0 * 1e-3
    outcome = compare_tensor("grad_input", result, reference, None, "float64")
    assert outcome.max_rel_error == pytest.approx(1e-3)
    assert outcome.error_eps == pytest.approx(1e-3 / np.finfo(np.float64).eps)
    assert outcome.worst_index == (1, 0)
    assert not outcome.passed
    assert "mismatched elements 1 / 4" in outcome.reason and "(1, 0)" in outcome.reason


@pytest.mark.parametrize("result, fragment", [
    (np.zeros((3, 2)), "shape (3, 2) != expected (2, 3)"),
    (np.zeros((2, 3), dtype=np.float32), "dtype float32 != expected float64"),
    (None, "is None"),
    ([[0.0] * 3] * 2, "list"),
])
def test_structural_problems_fail_with_a_reason(result, fragment):
    outcome = compare_tensor("output", result, np.zeros((2, 3)), None, "float64")
    assert not outcome.passed and fragment in outcome.reason


def test_non_finite_values_fail_even_when_tiny_tolerance_would_allow():
    reference = np.ones((2, 2))
    result = reference.copy()
    result[0, 1] = np.nan
    outcome = compare_tensor("output", result, reference, None, "float64")
    assert not outcome.passed and "non-finite" in outcome.reason and "(0, 1)" in outcome.reason


def test_matching_infinities_are_not_errors():
    reference = np.array([1.0, np.inf, -np.inf])
    outcome = compare_tensor("output", reference.copy(), reference, None, "float64")
    assert outcome.passed


def test_tolerance_is_the_larger_of_floor_and_torch_factor():
    assert tolerance_eps("float32", 0.0) == DEFAULT_TOLERANCE["float32"]
    assert tolerance_eps("float32", 100.0) == 100.0 * DEFAULT_TOLERANCE["torch_factor"]
    assert tolerance_eps("float64", 1.0, {"float64": 5.0, "torch_factor": 1.0}) == 5.0


def _conv_case(dtype, rng):
    x = rng.standard_normal((2, 4, 9, 8)).astype(dtype)
    w = (rng.standard_normal((6, 4, 3, 3)) / 6).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    hp = dict(stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=1)
    return x, w, b, hp


@pytest.mark.parametrize("seed", range(5))
def test_correct_float32_conv_passes_and_its_error_is_comparable_to_torch(seed):
    rng = np.random.default_rng(seed)
    x, w, b, hp = _conv_case(np.float32, rng)
    out, cache = conv2d_forward(x, w, b, **hp)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    grads = conv2d_backward(dout, cache)
    tensors = {"input": x, "weight": w, "bias": b}
    reference = torch_results("conv2d", tensors, hp, dout, "float64")
    at_dtype = torch_results("conv2d", tensors, hp, dout, "float32")
    for name, value in zip(("output", "grad_input", "grad_weight", "grad_bias"), (out, *grads)):
        outcome = compare_tensor(name, value, reference[name], at_dtype[name], "float32")
        assert outcome.passed, outcome.reason
        assert outcome.error_eps < 16  # a few epsilons, like torch
        assert outcome.torch_error_eps < 16


def test_float64_implementation_computing_in_float32_fails():
    rng = np.random.default_rng(0)
    x, w, b, hp = _conv_case(np.float64, rng)
    # Compute in float32, hand back float64: the dtype is right, the precision is not.
    out32, _ = conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), **hp)
    out = out32.astype(np.float64)
    reference = torch_results("conv2d", {"input": x, "weight": w, "bias": b}, hp, None, "float64")
    outcome = compare_tensor("output", out, reference["output"], reference["output"], "float64")
    assert not outcome.passed
    assert outcome.error_eps > 1e6 * DEFAULT_TOLERANCE["float64"] / 256


def test_relative_error_counts_nan_as_infinite():
    assert relative_error_eps(np.array([np.nan]), np.array([1.0]), "float64") == np.inf


def test_a_failure_shows_the_two_values_with_the_digits_that_tell_them_apart():
    reference = np.array([-0.369267123456789, 1.0])
    close = reference.copy()
    close[0] += 1e-9  # a float64 mistake below 6 significant digits
    reason = compare_tensor("grad_input", close, reference, reference, "float64").reason
    assert "(-0.369267122 vs -0.369267123)" in reason
    far = reference.copy()
    far[0] = 0.5
    assert "(0.5 vs -0.369267)" in compare_tensor("grad_input", far, reference, reference, "float64").reason
