"""Tests of the built-in max_pool1d and avg_pool1d: torch autograd, loop twins, output-size and
validity rules, special values (ties, -inf under padding) and a planted mistake."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from twins_pooling1d import (
    avg_pool1d_backward_loops,
    avg_pool1d_forward_loops,
    max_pool1d_backward_loops,
    max_pool1d_forward_loops,
    window_starts,
)

from refcheck.layers.pooling1d import (
    avg_pool1d_backward,
    avg_pool1d_forward,
    max_pool1d_backward,
    max_pool1d_forward,
    pool1d_geometry,
)

LAYERS = {
    "max_pool1d": (max_pool1d_forward, max_pool1d_backward, max_pool1d_forward_loops,
                   max_pool1d_backward_loops, F.max_pool1d),
    "avg_pool1d": (avg_pool1d_forward, avg_pool1d_backward, avg_pool1d_forward_loops,
                   avg_pool1d_backward_loops, F.avg_pool1d),
}


@dataclass(frozen=True)
class Case:
    """One pooling configuration; ``inputs`` picks plain normals, ties or -inf values."""

    layer: str
    input_shape: tuple[int, int, int]
    hyper: dict[str, Any] = field(default_factory=dict)
    inputs: str = "normal"
    seed: int = 0

    @property
    def id(self) -> str:
        parts = [f"{k}{int(v) if isinstance(v, bool) else v}" for k, v in self.hyper.items()]
        shape = "x".join(map(str, self.input_shape))
        return f"{self.layer}-in{shape}-{'-'.join(parts)}-{self.inputs}"


def max_case(shape, seed, inputs="normal", **hyper) -> Case:
    return Case("max_pool1d", shape, hyper, inputs, seed)


def avg_case(shape, seed, **hyper) -> Case:
    return Case("avg_pool1d", shape, hyper, "normal", seed)


CASES = [
    max_case((2, 3, 8), 1, kernel_size=2),  # stride defaults to the kernel
    max_case((2, 2, 9), 2, kernel_size=3, stride=1),  # overlapping windows
    max_case((2, 2, 10), 3, kernel_size=3, stride=2, padding=1),
    max_case((1, 3, 11), 4, kernel_size=4, stride=3, padding=2, ceil_mode=True),
    max_case((2, 2, 12), 5, kernel_size=3, stride=2, dilation=2, padding=1),
    max_case((1, 2, 10), 6, kernel_size=2, stride=3, dilation=3, padding=1, ceil_mode=True),
    max_case((1, 2, 5), 7, kernel_size=7, padding=3, ceil_mode=True),  # window wider than input
    max_case((1, 2, 9), 8, kernel_size=(3,), stride=(2,), padding=(1,)),  # 1-tuples
    # ties: gradient to the first maximum, overlapping windows sharing it accumulate
    max_case((2, 3, 12), 9, "ties", kernel_size=3, stride=1, padding=1),
    max_case((2, 3, 11), 10, "ties", kernel_size=4, stride=2, dilation=2, ceil_mode=True),
    # -inf next to padding: padding never wins, the first real element does
    max_case((2, 2, 9), 11, "neg_inf", kernel_size=3, stride=2, padding=1, ceil_mode=True),
    max_case((1, 3, 8), 12, "neg_inf", kernel_size=5, stride=1, padding=2, dilation=1),
    avg_case((2, 3, 8), 21, kernel_size=2),
    avg_case((2, 2, 9), 22, kernel_size=3, stride=1),
    avg_case((2, 2, 10), 23, kernel_size=3, stride=2, padding=1, count_include_pad=True),
    avg_case((2, 2, 10), 24, kernel_size=3, stride=2, padding=1, count_include_pad=False),
    avg_case((1, 3, 11), 25, kernel_size=4, stride=3, padding=2, ceil_mode=True,
             count_include_pad=True),
    avg_case((1, 3, 11), 26, kernel_size=4, stride=3, padding=2, ceil_mode=True,
             count_include_pad=False),
    avg_case((1, 2, 5), 27, kernel_size=6, padding=3, ceil_mode=True),
    avg_case((1, 2, 7), 28, kernel_size=5, stride=3, ceil_mode=True, count_include_pad=False),
    avg_case((2, 2, 9), 29, kernel_size=(4,), stride=(2,), padding=(2,), ceil_mode=False),
]


def make_inputs(case: Case, dtype: type) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal(case.input_shape)
    if case.inputs == "ties":
        x = np.round(x)  # few distinct values: many ties inside and across windows
    elif case.inputs == "neg_inf":
        x[..., :2] = -np.inf  # border windows see only -inf and padding
        x[..., -1] = -np.inf
    x = x.astype(dtype)
    out_shape = LAYERS[case.layer][4](torch.tensor(x), **case.hyper).shape
    dout = rng.standard_normal(tuple(out_shape)).astype(dtype)
    return {"x": x, "dout": dout}


def torch_pool(case: Case, x: np.ndarray, dout: np.ndarray):
    leaf = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = LAYERS[case.layer][4](leaf, **case.hyper)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), (leaf.grad.numpy(),)


def run_layer(forward, backward, case, inputs):
    out, cache = forward(inputs["x"], **case.hyper)
    return out, tuple(backward(inputs["dout"], cache))


def assert_close(actual, expected, *, rtol, name, case_id):
    assert actual.shape == expected.shape, (
        f"{name} has shape {actual.shape}, but should be {expected.shape} [{case_id}]"
    )
    # -inf outputs must match exactly; compare the finite rest with a scaled tolerance.
    same_inf = np.isinf(expected) & (actual == expected)
    assert np.array_equal(np.isinf(actual), np.isinf(expected)) and same_inf.sum() == np.isinf(
        expected).sum(), f"{name}: infinities differ [{case_id}]"
    finite = ~np.isinf(expected)
    tolerance = rtol * max(1.0, float(np.abs(expected[finite]).max(initial=0)))
    error = np.abs(np.where(finite, actual.astype(np.float64), 0.0) - np.where(finite, expected, 0.0))
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(error), error.shape))
    assert error.max() <= tolerance, (
        f"{name}: {int((error > tolerance).sum())} / {error.size} mismatched, greatest absolute "
        f"difference {error.max():.3g} at index {worst} (up to {tolerance:.3g} allowed) "
        f"[{case_id}]"
    )


def assert_all_close(out, grads, expected_out, expected_grads, *, rtol, case):
    assert_close(out, expected_out, rtol=rtol, name="output", case_id=case.id)
    assert len(grads) == 1
    assert_close(grads[0], expected_grads[0], rtol=rtol, name="grad_input", case_id=case.id)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_float64_matches_torch(case: Case) -> None:
    forward, backward = LAYERS[case.layer][:2]
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(forward, backward, case, inputs)
    assert out.dtype == np.float64 and grads[0].dtype == np.float64
    assert_all_close(out, grads, *torch_pool(case, **inputs), rtol=1e-12, case=case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_float64_matches_loop_twin(case: Case) -> None:
    forward, backward, forward_loops, backward_loops = LAYERS[case.layer][:4]
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(forward, backward, case, inputs)
    twin = run_layer(forward_loops, backward_loops, case, inputs)
    assert_all_close(out, grads, *twin, rtol=1e-12, case=case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_float32_dtype_and_close_to_torch_float64(case: Case) -> None:
    forward, backward = LAYERS[case.layer][:2]
    inputs = make_inputs(case, np.float32)
    out, grads = run_layer(forward, backward, case, inputs)
    assert out.dtype == np.float32 and grads[0].dtype == np.float32, case.id
    assert_all_close(out, grads, *torch_pool(case, **inputs), rtol=1e-6, case=case)


@pytest.mark.parametrize("case", [c for c in CASES if c.seed in {4, 6, 7, 10, 11, 26, 27}],
                         ids=lambda case: case.id)
def test_loop_twin_matches_torch(case: Case) -> None:
    forward_loops, backward_loops = LAYERS[case.layer][2:4]
    inputs = make_inputs(case, np.float64)
    twin = run_layer(forward_loops, backward_loops, case, inputs)
    assert_all_close(*twin, *torch_pool(case, **inputs), rtol=1e-12, case=case)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_inputs_not_mutated_and_results_fresh(layer: str) -> None:
    case = next(c for c in CASES if c.layer == layer and c.hyper.get("padding"))
    inputs = make_inputs(case, np.float64)
    originals = {name: a.copy() for name, a in inputs.items()}
    for array in inputs.values():
        array.flags.writeable = False
    out, grads = run_layer(*LAYERS[layer][:2], case, inputs)
    for name, array in inputs.items():
        np.testing.assert_array_equal(array, originals[name], err_msg=name)
    for result in (out, *grads):
        assert not any(np.shares_memory(result, a) for a in inputs.values())


def test_output_length_and_validity_match_torch_on_a_grid() -> None:
    """Every (L, k, s, p, d, ceil_mode) in a small grid: same length as torch, or both refuse."""
    x_cache = {}
    for size, kernel, stride, padding, dilation, ceil_mode in itertools.product(
        range(1, 8), range(1, 5), range(1, 4), range(3), range(1, 3), (False, True)
    ):
        x = x_cache.setdefault(size, torch.zeros(1, 1, size))
        hyper = {"kernel_size": kernel, "stride": stride, "padding": padding,
                 "dilation": dilation, "ceil_mode": ceil_mode}
        try:
            expected = F.max_pool1d(x, **hyper).shape[-1]
        except RuntimeError:
            expected = None
        try:
            actual = pool1d_geometry(size, kernel, stride, padding, dilation, ceil_mode).out
        except ValueError:
            actual = None
        assert actual == expected, f"output length {actual}, but should be {expected} [{hyper}]"
        if expected is not None:
            assert len(window_starts(size, kernel, stride, padding, dilation, ceil_mode)) == expected


def test_ceil_mode_drops_a_window_starting_in_the_right_padding() -> None:
    # L=5, k=2, s=2, p=1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows by the formula, but the 4th
    # would start at 6 = L + p (padded coordinates), inside the right padding: 3 windows.
    assert pool1d_geometry(5, 2, 2, 1, 1, True).out == 3
    assert F.max_pool1d(torch.zeros(1, 1, 5), 2, 2, 1, ceil_mode=True).shape[-1] == 3
    # L=6: the 4th window starts at 6 < L + p = 7, inside the input: kept.
    assert pool1d_geometry(6, 2, 2, 1, 1, True).out == 4


@pytest.mark.parametrize(
    ("layer", "hyper"),
    [
        ("max_pool1d", {"kernel_size": 3, "padding": 2}),  # padding > kernel // 2
        ("max_pool1d", {"kernel_size": 3, "stride": 0}),
        ("max_pool1d", {"kernel_size": 2, "dilation": 0}),
        ("max_pool1d", {"kernel_size": 6}),  # output length 0 for L = 5
        ("max_pool1d", {"kernel_size": 3, "dilation": 3}),  # effective kernel 7 > L
        ("avg_pool1d", {"kernel_size": 3, "padding": 2}),
        ("avg_pool1d", {"kernel_size": 3, "stride": 0}),
        ("avg_pool1d", {"kernel_size": 6}),
        ("avg_pool1d", {"kernel_size": 2, "padding": -1}),
    ],
)
def test_invalid_hyperparameters_raise_like_torch(layer, hyper) -> None:
    x = np.zeros((1, 1, 5))
    with pytest.raises(RuntimeError):
        LAYERS[layer][4](torch.tensor(x), **hyper)
    with pytest.raises(ValueError):
        LAYERS[layer][0](x, **hyper)


def test_max_pool1d_hand_worked_ties_and_overlap() -> None:
    """x = [1, 3, 3, 2], kernel 2, stride 1: windows [1,3], [3,3], [3,2] pick positions 1, 1, 2."""
    out, cache = max_pool1d_forward(np.array([[[1.0, 3.0, 3.0, 2.0]]]), kernel_size=2, stride=1)
    np.testing.assert_array_equal(out, [[[3.0, 3.0, 3.0]]])
    (grad,) = max_pool1d_backward(np.array([[[10.0, 20.0, 40.0]]]), cache)
    # The tie [3, 3] goes to its first element; windows 0 and 1 share position 1: 10 + 20.
    np.testing.assert_array_equal(grad, [[[0.0, 30.0, 40.0, 0.0]]])


def test_avg_pool1d_hand_worked_ceil_mode_divisors() -> None:
    """L=5, k=3, s=2, p=1, ceil_mode: windows start at -1, 1, 3 and the last hangs past the right
    padding, which never counts: divisors 3, 3, 2 with padding, 2, 3, 2 without."""
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    hyper = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    with_pad, _ = avg_pool1d_forward(x, **hyper, count_include_pad=True)
    np.testing.assert_allclose(with_pad, [[[3 / 3, 9 / 3, 9 / 3]]])
    without_pad, _ = avg_pool1d_forward(x, **hyper, count_include_pad=False)
    np.testing.assert_allclose(without_pad, [[[3 / 2, 9 / 3, 9 / 2]]])
    np.testing.assert_allclose(with_pad, F.avg_pool1d(torch.tensor(x), **hyper).numpy())


def max_pool1d_backward_assigning(dout, cache):
    """Planted mistake: ``dx[argmax] = dout`` per window, so windows sharing a maximum overwrite
    each other instead of adding up (fancy-index assignment keeps one of the duplicates)."""
    geometry, best_offset = cache["geometry"], cache["best_offset"]
    positions = (np.arange(geometry.out) * geometry.stride - geometry.padding
                 + best_offset * geometry.dilation)
    grad = np.zeros(cache["shape"], dtype=cache["dtype"])
    rows = np.indices(positions.shape)[:-1]
    grad[(*rows, positions)] = dout
    return (grad,)


def shares_a_maximum(case: Case, x: np.ndarray) -> bool:
    """Whether two windows select the same input element (per the loop twin)."""
    _, cache = max_pool1d_forward_loops(x, **case.hyper)
    chosen = [(n, c, position) for (n, c, _), position in cache["chosen"].items()]
    return len(set(chosen)) < len(chosen)


def test_planted_assignment_instead_of_accumulation_is_caught() -> None:
    """Caught exactly on the cases where overlapping windows share a maximum; elsewhere nothing
    is shared and the mistake goes unseen (so the table needs overlapping rows)."""
    caught = 0
    for case in (c for c in CASES if c.layer == "max_pool1d"):
        inputs = make_inputs(case, np.float64)
        out, grads = run_layer(max_pool1d_forward, max_pool1d_backward_assigning, case, inputs)
        expected = torch_pool(case, **inputs)
        if shares_a_maximum(case, inputs["x"]):
            caught += 1
            with pytest.raises(AssertionError, match="grad_input"):
                assert_all_close(out, grads, *expected, rtol=1e-12, case=case)
        else:
            assert_all_close(out, grads, *expected, rtol=1e-12, case=case)
    assert caught >= 4
