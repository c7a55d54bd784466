"""Tests of the built-in pooling layers against torch autograd, loop twins and hand-worked cases."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from twins_pooling import (
    adaptive_avg_pool2d_backward_loops,
    adaptive_avg_pool2d_forward_loops,
    adaptive_max_pool2d_backward_loops,
    adaptive_max_pool2d_forward_loops,
    avg_pool2d_backward_loops,
    avg_pool2d_forward_loops,
    lp_pool2d_backward_loops,
    lp_pool2d_forward_loops,
    max_pool2d_backward_loops,
    max_pool2d_forward_loops,
    window_count_loops,
)

from refcheck.layers.adaptive import (
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    adaptive_max_pool2d_backward,
    adaptive_max_pool2d_forward,
    adaptive_windows,
)
from refcheck.layers.pooling import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    pool_output_size,
)
from refcheck.layers.lp_pooling import lp_pool2d_backward, lp_pool2d_forward


@pytest.fixture(autouse=True, scope="module")
def single_threaded_torch():
    """torch's thread pool only adds synchronisation cost on these tiny tensors, a lot of it
    on a busy machine; restore the setting for other modules."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@dataclass(frozen=True)
class Layer:
    """A pooling layer: the implementation, its loop twin and the torch function."""

    name: str
    forward: Callable
    backward: Callable
    forward_loops: Callable
    backward_loops: Callable
    torch_fn: Callable


LAYERS = {
    "max_pool2d": Layer("max_pool2d", max_pool2d_forward, max_pool2d_backward,
                        max_pool2d_forward_loops, max_pool2d_backward_loops, F.max_pool2d),
    "avg_pool2d": Layer("avg_pool2d", avg_pool2d_forward, avg_pool2d_backward,
                        avg_pool2d_forward_loops, avg_pool2d_backward_loops, F.avg_pool2d),
    "lp_pool2d": Layer("lp_pool2d", lp_pool2d_forward, lp_pool2d_backward,
                       lp_pool2d_forward_loops, lp_pool2d_backward_loops, F.lp_pool2d),
    "adaptive_avg_pool2d": Layer(
        "adaptive_avg_pool2d", adaptive_avg_pool2d_forward, adaptive_avg_pool2d_backward,
        adaptive_avg_pool2d_forward_loops, adaptive_avg_pool2d_backward_loops,
        F.adaptive_avg_pool2d),
    "adaptive_max_pool2d": Layer(
        "adaptive_max_pool2d", adaptive_max_pool2d_forward, adaptive_max_pool2d_backward,
        adaptive_max_pool2d_forward_loops, adaptive_max_pool2d_backward_loops,
        F.adaptive_max_pool2d),
}


@dataclass(frozen=True)
class PoolCase:
    """One layer configuration; ``input_kind`` picks how the input is drawn."""

    layer: str
    input_shape: tuple[int, int, int, int]
    params: dict[str, Any] = field(hash=False)
    seed: int = 0
    input_kind: str = "normal"  # normal | positive | ties

    @property
    def id(self) -> str:
        def fmt(value: Any) -> str:
            if isinstance(value, tuple):
                return "x".join(map(str, value))
            return str(value)

        short = {"kernel_size": "k", "stride": "s", "padding": "p", "dilation": "d",
                 "ceil_mode": "ceil", "count_include_pad": "cip", "divisor_override": "div",
                 "norm_type": "norm", "output_size": "out"}
        params = "-".join(f"{short[name]}{fmt(value)}" for name, value in self.params.items())
        shape = "x".join(map(str, self.input_shape))
        return f"{self.layer}-in{shape}-{params}-{self.input_kind}"


def max_case(shape, kernel, stride, padding=(0, 0), dilation=(1, 1), ceil=False, seed=0,
             input_kind="normal") -> PoolCase:
    return PoolCase("max_pool2d", shape, {
        "kernel_size": kernel, "stride": stride, "padding": padding, "dilation": dilation,
        "ceil_mode": ceil}, seed, input_kind)


def avg_case(shape, kernel, stride, padding, ceil, count_include_pad, divisor_override,
             seed=0) -> PoolCase:
    return PoolCase("avg_pool2d", shape, {
        "kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil,
        "count_include_pad": count_include_pad, "divisor_override": divisor_override}, seed)


def lp_case(shape, norm, kernel, stride, ceil, seed=0, input_kind="normal") -> PoolCase:
    return PoolCase("lp_pool2d", shape, {
        "norm_type": norm, "kernel_size": kernel, "stride": stride, "ceil_mode": ceil},
        seed, input_kind)


def adaptive_case(layer, shape, output_size, seed=0, input_kind="normal") -> PoolCase:
    return PoolCase(layer, shape, {"output_size": output_size}, seed, input_kind)


MAX_CASES = [
    max_case((2, 3, 8, 8), (2, 2), (2, 2), seed=1),
    max_case((2, 2, 7, 9), (3, 2), (2, 1), (1, 1), seed=2),  # non-square kernel and stride
    max_case((2, 2, 8, 7), (3, 3), (2, 2), (1, 1), ceil=True, seed=3),  # ceil adds a row
    max_case((2, 2, 9, 10), (3, 2), (1, 2), (1, 1), (2, 3), seed=4),  # dilation
    max_case((1, 2, 10, 9), (2, 3), (3, 2), (1, 1), (2, 1), ceil=True, seed=5),
    max_case((1, 2, 5, 5), (2, 2), (2, 2), (1, 1), ceil=True, seed=6),  # ceil window dropped
    max_case((1, 2, 2, 3), (3, 3), (2, 2), ceil=True, seed=7),  # kernel larger than input
    max_case((2, 2, 10, 10), (2, 2), (3, 3), (1, 1), ceil=True, seed=8),  # stride > kernel
    max_case((1, 2, 7, 8), (4, 5), (2, 3), (2, 2), ceil=True, seed=9),  # padding = kernel // 2
    max_case((2, 2, 6, 6), (1, 1), (2, 2), seed=10),
    max_case((2, 3, 7, 7), (3, 3), (1, 1), (1, 1), seed=11, input_kind="ties"),
    max_case((2, 2, 9, 8), (3, 2), (2, 1), (1, 1), (1, 2), ceil=True, seed=12, input_kind="ties"),
]

_AVG_GEOMETRIES = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), False),
    ((2, 2, 7, 9), (3, 2), (2, 1), (1, 1), False),
    ((2, 2, 8, 7), (3, 3), (2, 2), (1, 1), True),  # ceil adds a row
    ((1, 2, 6, 6), (3, 3), (3, 3), (1, 1), True),  # last window: input, padding, overhang
    ((1, 2, 5, 5), (2, 2), (2, 2), (1, 1), True),  # ceil window dropped
    ((1, 2, 2, 3), (3, 3), (2, 2), (0, 0), True),  # kernel larger than input
    ((2, 2, 9, 10), (4, 2), (3, 1), (2, 1), True),
]
AVG_CASES = [
    avg_case(shape, kernel, stride, padding, ceil, include, override, seed=10 * index + variant)
    for index, (shape, kernel, stride, padding, ceil) in enumerate(_AVG_GEOMETRIES)
    for variant, (include, override) in enumerate(
        itertools.product((True, False), (None, 3)))
]

_LP_GEOMETRIES = [
    ((2, 2, 8, 8), (2, 2), (2, 2), False),
    ((2, 2, 7, 9), (3, 2), (2, 1), False),
    ((2, 2, 8, 8), (3, 3), (2, 3), True),  # partial windows on both axes
    ((1, 2, 5, 7), (2, 4), (2, 2), True),
    ((1, 2, 2, 3), (3, 3), (2, 2), True),  # kernel larger than input
]
LP_CASES = [
    lp_case(shape, norm, kernel, stride, ceil, seed=10 * index + int(norm))
    for index, (shape, kernel, stride, ceil) in enumerate(_LP_GEOMETRIES)
    for norm in (1.0, 2.0, 3.0)
]

ADAPTIVE_SIZES = [
    ((2, 3, 8, 8), (4, 4)),  # divides
    ((2, 2, 7, 9), (3, 4)),  # does not divide: overlapping windows
    ((2, 2, 5, 6), (5, 6)),  # identity
    ((2, 2, 4, 3), (6, 5)),  # larger than the input: windows share elements
    ((2, 2, 7, 5), (1, 1)),  # global
    ((1, 2, 10, 7), (3, 2)),
]
ADAPTIVE_CASES = [
    adaptive_case(layer, shape, size, seed=index)
    for layer in ("adaptive_avg_pool2d", "adaptive_max_pool2d")
    for index, (shape, size) in enumerate(ADAPTIVE_SIZES)
] + [
    adaptive_case("adaptive_max_pool2d", (2, 2, 7, 9), (3, 4), seed=20, input_kind="ties"),
    adaptive_case("adaptive_max_pool2d", (2, 2, 4, 5), (6, 3), seed=21, input_kind="ties"),
]

ALL_CASES = MAX_CASES + AVG_CASES + LP_CASES + ADAPTIVE_CASES
# The loop twins themselves are checked against torch on a few rows per layer.
TWIN_CHECK_CASES = [
    MAX_CASES[4],  # dilation and ceil_mode
    MAX_CASES[5],  # ceil_mode window dropped
    MAX_CASES[11],  # ties, dilation, ceil_mode
    AVG_CASES[12],  # window over input, padding and overhang; count_include_pad
    AVG_CASES[13],  # same with divisor_override
    AVG_CASES[26],  # count_include_pad=False
    LP_CASES[6], LP_CASES[7], LP_CASES[8],  # partial ceil windows, norms 1, 2, 3
    LP_CASES[14],  # kernel larger than input, norm 3
    ADAPTIVE_CASES[1],  # avg, overlapping windows
    ADAPTIVE_CASES[9],  # max, output larger than input
    ADAPTIVE_CASES[13],  # max, ties, output rows larger than input
]


def ids(cases: list[PoolCase]) -> list[str]:
    return [case.id for case in cases]


def make_input(case: PoolCase, dtype: type) -> np.ndarray:
    rng = np.random.default_rng(case.seed)
    if case.input_kind == "ties":  # a small integer grid: many exactly equal window maxima
        return rng.integers(-2, 3, size=case.input_shape).astype(dtype)
    x = rng.standard_normal(case.input_shape)
    if case.input_kind == "positive":
        x = np.abs(x) + 0.25
    return x.astype(dtype)


def make_dout(case: PoolCase, out_shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A random upstream gradient: all ones would hide wrong routing between equal paths."""
    rng = np.random.default_rng(case.seed + 1000)
    return rng.standard_normal(out_shape).astype(dtype)


def torch_reference(
    case: PoolCase, x: np.ndarray, dout: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Output and input gradient from torch autograd, in float64."""
    leaf = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    params = dict(case.params)
    if case.layer == "lp_pool2d":  # positional in torch, which has no keyword for it
        out = F.lp_pool2d(leaf, params.pop("norm_type"), **params)
    else:
        out = LAYERS[case.layer].torch_fn(leaf, **params)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), leaf.grad.numpy()


def run(forward: Callable, backward: Callable, case: PoolCase, x: np.ndarray,
        dout: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out, cache = forward(x, **case.params)
    if dout is None:
        dout = make_dout(case, out.shape, x.dtype)
    return out, backward(dout, cache), dout


def assert_close(actual: np.ndarray, expected: np.ndarray, *, rtol: float, name: str,
                 case: PoolCase) -> None:
    """Closeness relative to the largest finite reference magnitude; NaN must match NaN."""
    assert actual.shape == expected.shape, (
        f"{name}: shape {actual.shape}, expected {expected.shape} [{case.id}]")
    actual = actual.astype(np.float64)
    nan_expected = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(actual), nan_expected, err_msg=f"{name} NaN [{case.id}]")
    finite = ~nan_expected
    if not finite.any():
        return
    scale = max(1.0, float(np.abs(expected[finite & np.isfinite(expected)]).max(initial=0.0)))
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=0, atol=rtol * scale,
                               err_msg=f"{name} [{case.id}]")


def assert_results_close(actual: tuple[np.ndarray, np.ndarray],
                         expected: tuple[np.ndarray, np.ndarray], *, rtol: float,
                         case: PoolCase) -> None:
    """Output and input gradient, each by :func:`assert_close`."""
    names = ("output", "grad_input")
    for name, actual_value, expected_value in zip(names, actual, expected, strict=True):
        assert_close(actual_value, expected_value, rtol=rtol, name=name, case=case)


@pytest.mark.parametrize("case", ALL_CASES, ids=ids(ALL_CASES))
def test_float64_matches_torch(case: PoolCase) -> None:
    layer = LAYERS[case.layer]
    x = make_input(case, np.float64)
    out, dx, dout = run(layer.forward, layer.backward, case, x)
    assert out.dtype == np.float64 and dx.dtype == np.float64
    assert_results_close((out, dx), torch_reference(case, x, dout), rtol=1e-12, case=case)


@pytest.mark.parametrize("case", ALL_CASES, ids=ids(ALL_CASES))
def test_float64_matches_loop_twin(case: PoolCase) -> None:
    layer = LAYERS[case.layer]
    x = make_input(case, np.float64)
    out, dx, dout = run(layer.forward, layer.backward, case, x)
    twin_out, twin_dx, _ = run(layer.forward_loops, layer.backward_loops, case, x, dout)
    assert_results_close((out, dx), (twin_out, twin_dx), rtol=1e-12, case=case)


def _float32_input_kind(case: PoolCase) -> PoolCase:
    # A cube-root of a window sum near zero flips between a value and NaN with rounding, so
    # float32 lp pooling with norm 3 uses positive inputs.
    if case.layer == "lp_pool2d" and case.params["norm_type"] == 3.0:
        return PoolCase(case.layer, case.input_shape, case.params, case.seed, "positive")
    return case


@pytest.mark.parametrize("case", ALL_CASES, ids=ids(ALL_CASES))
def test_float32_dtype_and_close_to_torch_float64(case: PoolCase) -> None:
    case = _float32_input_kind(case)
    layer = LAYERS[case.layer]
    x = make_input(case, np.float32)
    out, dx, dout = run(layer.forward, layer.backward, case, x)
    assert out.dtype == np.float32 and dx.dtype == np.float32
    # The reference sees the same float32 values, computed in float64.
    assert_results_close((out, dx), torch_reference(case, x, dout), rtol=2e-5, case=case)


@pytest.mark.parametrize("case", TWIN_CHECK_CASES, ids=ids(TWIN_CHECK_CASES))
def test_loop_twin_matches_torch(case: PoolCase) -> None:
    layer = LAYERS[case.layer]
    x = make_input(case, np.float64)
    out, dx, dout = run(layer.forward_loops, layer.backward_loops, case, x)
    assert_results_close((out, dx), torch_reference(case, x, dout), rtol=1e-12, case=case)


def _sizes(case: PoolCase, ceil_mode: bool) -> tuple[int, ...]:
    p = case.params
    padding = p.get("padding", (0, 0))
    dilation = p.get("dilation", (1, 1))
    return tuple(
        pool_output_size(case.input_shape[2 + axis], p["kernel_size"][axis], p["stride"][axis],
                         padding[axis], dilation[axis], ceil_mode)
        for axis in range(2))


@pytest.mark.parametrize("layer", ["max_pool2d", "avg_pool2d", "lp_pool2d"])
def test_tables_have_extra_ceil_windows(layer: str) -> None:
    ceil_cases = [c for c in ALL_CASES if c.layer == layer and c.params["ceil_mode"]]
    assert any(_sizes(c, True) > _sizes(c, False) for c in ceil_cases)


def test_tables_reach_signed_and_nan_lp_outputs() -> None:
    norm3 = [c for c in LP_CASES if c.params["norm_type"] == 3.0]
    outputs = [run(lp_pool2d_forward, lp_pool2d_backward, c, make_input(c, np.float64))[0]
               for c in norm3]
    assert any(np.isnan(out).any() for out in outputs)
    assert all((~np.isnan(out)).any() for out in outputs)
    norm1 = [c for c in LP_CASES if c.params["norm_type"] == 1.0]
    assert any((run(lp_pool2d_forward, lp_pool2d_backward, c, make_input(c, np.float64))[0]
                < 0).any() for c in norm1)


TIE_CASES = [case for case in ALL_CASES if case.input_kind == "ties"]


@pytest.mark.parametrize("case", TIE_CASES, ids=ids(TIE_CASES))
def test_tie_inputs_really_tie(case: PoolCase) -> None:
    """A ramp far below the grid spacing makes later elements win ties; torch's gradient must
    then change, proving the rows contain tied maxima that first-max routing decides."""
    x = make_input(case, np.float64)
    height, width = case.input_shape[2:]
    ramp = 1e-6 * np.arange(height * width, dtype=np.float64).reshape(height, width)
    out, _, dout = run(LAYERS[case.layer].forward, LAYERS[case.layer].backward, case, x)
    _, first_max_grad = torch_reference(case, x, dout)
    _, last_max_grad = torch_reference(case, x + ramp, dout)
    assert not np.allclose(first_max_grad, last_max_grad)


def test_output_size_matches_torch_on_a_grid() -> None:
    for size, kernel, stride, dilation, ceil_mode in itertools.product(
            range(1, 8), range(1, 5), range(1, 4), (1, 2), (False, True)):
        for padding in range(kernel // 2 + 1):
            x = np.zeros((1, 1, size, 2))
            hyper = {"kernel_size": (kernel, 1), "stride": (stride, 1), "padding": (padding, 0),
                     "dilation": (dilation, 1), "ceil_mode": ceil_mode}
            label = f"size={size} {hyper}"
            try:
                expected = F.max_pool2d(torch.tensor(x), **hyper).shape[2]
            except RuntimeError:
                with pytest.raises(ValueError):
                    max_pool2d_forward(x, **hyper)
                continue
            geometry = (size, kernel, stride, padding, dilation, ceil_mode)
            assert pool_output_size(*geometry) == expected, label
            assert window_count_loops(*geometry) == expected, label
            assert max_pool2d_forward(x, **hyper)[0].shape[2] == expected, label


def test_ceil_mode_output_sizes_by_hand() -> None:
    # (5 + 2 - 2) / 2 rounds up to 3, so 4 windows, but the 4th would start at padded index 6,
    # inside the right padding (>= 5 + 1): torch drops it.
    assert pool_output_size(5, 2, 2, 1, 1, True) == 3
    assert pool_output_size(5, 2, 2, 1, 1, False) == 3
    # An extra window that starts inside the input and hangs past it.
    assert pool_output_size(8, 3, 2, 1, 1, False) == 4
    assert pool_output_size(8, 3, 2, 1, 1, True) == 5
    # With ceil_mode a kernel larger than the input still gives one window.
    assert pool_output_size(2, 3, 2, 0, 1, True) == 1
    assert pool_output_size(2, 3, 2, 0, 1, False) == 0


def _pool(forward: Callable, backward: Callable, x: np.ndarray, dout: np.ndarray, **params):
    out, cache = forward(x, **params)
    return out, backward(dout, cache)


MAX_2X2 = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0), "dilation": (1, 1),
           "ceil_mode": False}


def test_max_pool_routes_ties_to_first_maximum_by_hand() -> None:
    x = np.array([[1.0, 3.0], [3.0, 0.0]])[None, None]
    out, dx = _pool(max_pool2d_forward, max_pool2d_backward, x, np.array([[[[5.0]]]]), **MAX_2X2)
    assert out[0, 0, 0, 0] == 3.0
    np.testing.assert_array_equal(dx[0, 0], [[0.0, 5.0], [0.0, 0.0]])
    # All equal: the top-left element (first in row-major order) takes the gradient.
    out, dx = _pool(max_pool2d_forward, max_pool2d_backward, np.full((1, 1, 2, 2), 7.0),
                    np.array([[[[2.0]]]]), **MAX_2X2)
    np.testing.assert_array_equal(dx[0, 0], [[2.0, 0.0], [0.0, 0.0]])


def test_max_pool_overlapping_windows_accumulate_by_hand() -> None:
    x = np.array([[0.0, 9.0, 0.0], [0.0, 0.0, 0.0]])[None, None]
    params = dict(MAX_2X2, stride=(1, 1))
    dout = np.array([[[[1.5, -4.0]]]])
    out, dx = _pool(max_pool2d_forward, max_pool2d_backward, x, dout, **params)
    np.testing.assert_array_equal(out[0, 0], [[9.0, 9.0]])
    np.testing.assert_array_equal(dx[0, 0], [[0.0, -2.5, 0.0], [0.0, 0.0, 0.0]])
    # Adjacent windows over a constant row each take their own first element.
    params = dict(MAX_2X2, kernel_size=(1, 2), stride=(1, 1))
    out, dx = _pool(max_pool2d_forward, max_pool2d_backward, np.full((1, 1, 1, 3), 2.0),
                    np.array([[[[1.0, 10.0]]]]), **params)
    np.testing.assert_array_equal(dx[0, 0], [[1.0, 10.0, 0.0]])


@pytest.mark.parametrize("dtype, offset", [(np.float64, -1e30), (np.float32, -3e38)])
def test_padded_max_pool_pads_with_minus_infinity(dtype: type, offset: float) -> None:
    rng = np.random.default_rng(7)
    x = (offset * rng.uniform(0.5, 1.0, size=(2, 2, 5, 6))).astype(dtype)
    params = {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1), "dilation": (1, 1),
              "ceil_mode": True}
    case = max_case(x.shape, (3, 3), (2, 2), (1, 1), ceil=True)
    dout = rng.standard_normal((2, 2) + _sizes(case, True)).astype(dtype)
    out, dx = _pool(max_pool2d_forward, max_pool2d_backward, x, dout, **params)
    assert (out < 0.4 * offset).all()  # zero padding would have won every border window
    expected_out, expected_dx = torch_reference(case, x, dout)
    np.testing.assert_array_equal(out, expected_out.astype(dtype))
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-6)


def test_all_minus_infinity_input_routes_to_first_real_element() -> None:
    x = np.full((1, 2, 3, 4), -np.inf)
    case = max_case(x.shape, (2, 3), (2, 2), (1, 1), ceil=True)
    dout = np.random.default_rng(3).standard_normal((1, 2) + _sizes(case, True))
    out, dx = _pool(max_pool2d_forward, max_pool2d_backward, x, dout, **case.params)
    expected_out, expected_dx = torch_reference(case, x, dout)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(dx, expected_dx)
    # Window (0, 0) spans rows -1..0 and columns -1..1: its first real element is (0, 0).
    assert dx[0, 0, 0, 0] == dout[0, 0, 0, 0]


@pytest.mark.parametrize("layer", ["max_pool2d", "adaptive_max_pool2d"])
def test_nan_propagates_and_last_nan_takes_gradient(layer: str) -> None:
    x = np.array([[1.0, np.nan, 3.0, np.nan], [0.0, 2.0, np.nan, 1.0]])[None, None]
    case = (max_case(x.shape, (2, 4), (2, 4)) if layer == "max_pool2d"
            else adaptive_case(layer, x.shape, (1, 1)))
    dout = np.array([[[[2.5]]]])
    out, dx, _ = run(LAYERS[layer].forward, LAYERS[layer].backward, case, x, dout)
    expected_out, expected_dx = torch_reference(case, x, dout)
    assert np.isnan(out).all() and np.isnan(expected_out).all()
    np.testing.assert_array_equal(dx, expected_dx)
    assert dx[0, 0, 1, 2] == 2.5


def test_avg_pool_divisors_by_hand() -> None:
    """6x6 ones, kernel 3, stride 3, padding 1, ceil_mode: per axis the windows are
    [-1, 2) (one padding), [2, 5) and [5, 8) = input 5, padding 6, overhang 7.
    Divisors per axis counting padding: 3, 3, 2 (the overhang never counts); real: 2, 3, 1."""
    x = np.ones((1, 1, 6, 6))
    params = {"kernel_size": (3, 3), "stride": (3, 3), "padding": (1, 1), "ceil_mode": True}
    real = np.array([2.0, 3.0, 1.0])
    with_pad = np.array([3.0, 3.0, 2.0])
    out, _ = avg_pool2d_forward(x, **params, count_include_pad=True, divisor_override=None)
    np.testing.assert_allclose(out[0, 0], np.outer(real, real) / np.outer(with_pad, with_pad))
    out, _ = avg_pool2d_forward(x, **params, count_include_pad=False, divisor_override=None)
    np.testing.assert_allclose(out[0, 0], np.ones((3, 3)))
    out, cache = avg_pool2d_forward(x, **params, count_include_pad=True, divisor_override=4)
    np.testing.assert_allclose(out[0, 0], np.outer(real, real) / 4)
    dx = avg_pool2d_backward(np.ones((1, 1, 3, 3)), cache)
    np.testing.assert_allclose(dx, np.full((1, 1, 6, 6), 0.25))  # windows do not overlap


LP_FULL = {"kernel_size": (2, 2), "stride": (2, 2), "ceil_mode": False}


def test_lp_pool_norm_1_sums_signed_values() -> None:
    x = np.array([[1.0, -2.0], [3.0, -4.0]])[None, None]
    out, dx = _pool(lp_pool2d_forward, lp_pool2d_backward, x, np.array([[[[3.0]]]]),
                    norm_type=1.0, **LP_FULL)
    assert out[0, 0, 0, 0] == -2.0  # not the L1 norm 10
    np.testing.assert_array_equal(dx, np.full_like(x, 3.0))


def test_lp_pool_partial_ceil_window_is_rescaled() -> None:
    """A 2x2 input under a 3x3 ceil_mode window: torch averages over the 4 real elements and
    multiplies by 9, so the power sum is scaled by 9 / 4."""
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    params = {"kernel_size": (3, 3), "stride": (2, 2), "ceil_mode": True}
    for norm, expected in [(1.0, 6.0 * 9 / 4), (2.0, np.sqrt(14.0 * 9 / 4)),
                           (3.0, np.cbrt(36.0 * 9 / 4))]:
        out, _ = lp_pool2d_forward(x, norm_type=norm, **params)
        np.testing.assert_allclose(out[0, 0, 0, 0], expected, rtol=1e-14)
        torch_out = F.lp_pool2d(torch.tensor(x), norm, **params)
        np.testing.assert_allclose(out, torch_out.numpy(), rtol=1e-14)


def test_lp_pool_l2_gradient_is_dout_times_x_over_out() -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 4, 6))
    dout = rng.standard_normal((2, 3, 2, 3))
    out, dx = _pool(lp_pool2d_forward, lp_pool2d_backward, x, dout, norm_type=2.0, **LP_FULL)
    def upsample(a):
        return a.repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_allclose(dx, upsample(dout) * x / upsample(out), rtol=1e-12)


@pytest.mark.parametrize("norm", [1.0, 2.0, 3.0])
def test_lp_pool_zero_window_has_zero_gradient(norm: float) -> None:
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, :, 2:] = [[1.0, 2.0], [0.5, 1.0]]
    dout = np.array([[[[4.0, -1.0]]]])
    out, dx = _pool(lp_pool2d_forward, lp_pool2d_backward, x, dout, norm_type=norm, **LP_FULL)
    case = lp_case(x.shape, norm, (2, 2), (2, 2), False)
    expected_out, expected_dx = torch_reference(case, x, dout)
    assert out[0, 0, 0, 0] == 0.0
    np.testing.assert_array_equal(dx[0, 0, :, :2], np.zeros((2, 2)))  # no NaN
    np.testing.assert_allclose(out, expected_out, rtol=1e-14)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-14)


def test_lp_pool_norm_3_negative_sum_is_nan_like_torch() -> None:
    x = -np.ones((1, 1, 2, 2))
    out, dx = _pool(lp_pool2d_forward, lp_pool2d_backward, x, np.ones((1, 1, 1, 1)),
                    norm_type=3.0, **LP_FULL)
    expected_out, expected_dx = torch_reference(lp_case(x.shape, 3.0, (2, 2), (2, 2), False),
                                                x, np.ones((1, 1, 1, 1)))
    assert np.isnan(out).all() and np.isnan(expected_out).all()
    assert np.isnan(dx).all() and np.isnan(expected_dx).all()


def test_adaptive_windows_by_hand() -> None:
    starts, ends = adaptive_windows(7, 3)  # 7/3: [0, 3), [2, 5), [4, 7)
    np.testing.assert_array_equal(starts, [0, 2, 4])
    np.testing.assert_array_equal(ends, [3, 5, 7])
    starts, ends = adaptive_windows(4, 6)  # more windows than elements
    np.testing.assert_array_equal(starts, [0, 0, 1, 2, 2, 3])
    np.testing.assert_array_equal(ends, [1, 2, 2, 3, 4, 4])


def test_adaptive_avg_by_hand() -> None:
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    out, cache = adaptive_avg_pool2d_forward(x, output_size=(3, 5))
    np.testing.assert_allclose(out[0, 0], [[0.0, 0.5, 1.0, 1.5, 2.0],
                                           [1.5, 2.0, 2.5, 3.0, 3.5],
                                           [3.0, 3.5, 4.0, 4.5, 5.0]], rtol=1e-15)
    # Row windows [0, 1), [0, 2), [1, 2): each input row gets weight 1 + 1/2. Column windows
    # [0, 1), [0, 2), [1, 2), [1, 3), [2, 3): columns 0 and 2 get 1 + 1/2, column 1 gets
    # 1/2 + 1 + 1/2. With dout = 1 the gradient is the product of the two weights.
    dx = adaptive_avg_pool2d_backward(np.ones((1, 1, 3, 5)), cache)
    np.testing.assert_allclose(dx[0, 0], [[2.25, 3.0, 2.25], [2.25, 3.0, 2.25]], rtol=1e-15)


def test_adaptive_max_ties_by_hand() -> None:
    x = np.array([[1.0, 4.0, 4.0], [4.0, 0.0, 4.0]])[None, None]
    out, dx = _pool(adaptive_max_pool2d_forward, adaptive_max_pool2d_backward, x,
                    np.array([[[[1.0, 2.0]]]]), output_size=(1, 2))
    # Windows: columns [0, 2) and [1, 3); both contain (0, 1) first in row-major order.
    np.testing.assert_array_equal(out[0, 0], [[4.0, 4.0]])
    np.testing.assert_array_equal(dx[0, 0], [[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]])


MUTATION_CASES = [MAX_CASES[2], AVG_CASES[14], LP_CASES[7], ADAPTIVE_CASES[1], ADAPTIVE_CASES[9]]
assert {case.layer for case in MUTATION_CASES} == set(LAYERS)


@pytest.mark.parametrize("case", MUTATION_CASES, ids=ids(MUTATION_CASES))
def test_inputs_not_mutated(case: PoolCase) -> None:
    layer = LAYERS[case.layer]
    x = make_input(case, np.float64)
    original_x = x.copy()
    x.flags.writeable = False  # any in-place write raises instead of passing silently
    out, cache = layer.forward(x, **case.params)
    dout = make_dout(case, out.shape, np.float64)
    original_dout = dout.copy()
    dout.flags.writeable = False
    dx = layer.backward(dout, cache)
    dx_again = layer.backward(dout, cache)  # the cache is not consumed either
    np.testing.assert_array_equal(x, original_x)
    np.testing.assert_array_equal(dout, original_dout)
    np.testing.assert_array_equal(dx, dx_again)
    for result in (out, dx):
        assert not np.shares_memory(result, x) and not np.shares_memory(result, dout)


def test_invalid_geometry_raises() -> None:
    x = np.zeros((1, 1, 6, 6))
    with pytest.raises(ValueError, match="padding"):
        max_pool2d_forward(x, kernel_size=(3, 3), stride=(1, 1), padding=(2, 0),
                           dilation=(2, 2), ceil_mode=False)
    with pytest.raises(ValueError, match="padding"):
        avg_pool2d_forward(x, kernel_size=(2, 3), stride=(1, 1), padding=(0, 2),
                           ceil_mode=False, count_include_pad=True, divisor_override=None)
    with pytest.raises(ValueError, match="output size"):
        lp_pool2d_forward(x, norm_type=2.0, kernel_size=(7, 2), stride=(1, 1), ceil_mode=False)
