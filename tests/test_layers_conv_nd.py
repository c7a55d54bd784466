"""Tests of the built-in conv1d and conv3d layers: torch autograd, loop twins, validity rules."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from twins_conv_nd import (
    conv1d_backward_loops,
    conv1d_forward_loops,
    conv3d_backward_loops,
    conv3d_forward_loops,
)

from refcheck.layers.conv_core import conv_input_gradient, resolve_padding_nd
from refcheck.layers.conv_nd import (
    conv1d_backward,
    conv1d_forward,
    conv3d_backward,
    conv3d_forward,
)

GRAD_NAMES = ("grad_input", "grad_weight", "grad_bias")


@dataclass(frozen=True)
class ConvCase:
    """One conv1d / conv3d configuration; ``id`` doubles as the pytest id."""

    input_shape: tuple[int, ...]  # (N, C, *spatial)
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: str | int | tuple[int, ...] = 0
    dilation: int | tuple[int, ...] = 1
    groups: int = 1
    bias: bool = True
    seed: int = 0

    @property
    def ndim(self) -> int:
        return len(self.kernel_size)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.input_shape[1] // self.groups, *self.kernel_size)

    @property
    def hyperparameters(self) -> dict:
        return {"stride": self.stride, "padding": self.padding,
                "dilation": self.dilation, "groups": self.groups}

    @property
    def id(self) -> str:
        def fmt(value) -> str:
            return value if isinstance(value, str) else "x".join(map(str, np.atleast_1d(value)))

        return (
            f"conv{self.ndim}d-in{fmt(self.input_shape)}-f{self.out_channels}"
            f"-k{fmt(self.kernel_size)}-s{fmt(self.stride)}-p{fmt(self.padding)}"
            f"-d{fmt(self.dilation)}-g{self.groups}-{'b' if self.bias else 'nob'}"
        )


LAYERS: dict[int, tuple[Callable, Callable, Callable, Callable, Callable]] = {
    1: (conv1d_forward, conv1d_backward, conv1d_forward_loops, conv1d_backward_loops,
        torch.nn.functional.conv1d),
    3: (conv3d_forward, conv3d_backward, conv3d_forward_loops, conv3d_backward_loops,
        torch.nn.functional.conv3d),
}

CASES_1D = [
    ConvCase((2, 3, 7), 4, (1,), seed=1),
    ConvCase((2, 3, 8), 2, (3,), padding=1, seed=2),
    ConvCase((2, 2, 9), 3, (4,), padding=2, bias=False, seed=3),
    ConvCase((1, 2, 11), 2, (5,), padding=2, seed=4),
    ConvCase((1, 1, 5), 1, (5,), seed=5),  # one window covers the whole input
    # strides, including positions the last window never reaches
    ConvCase((2, 3, 10), 4, (3,), stride=2, padding=1, seed=6),
    ConvCase((2, 2, 11), 3, (3,), stride=3, seed=7),
    ConvCase((1, 2, 9), 2, (2,), stride=(4,), padding=(2,), bias=False, seed=8),  # 1-tuples
    ConvCase((1, 2, 3), 2, (1,), stride=9, padding=4, seed=9),  # only window in the padding
    # dilations
    ConvCase((2, 2, 12), 3, (3,), padding=2, dilation=2, seed=10),
    ConvCase((1, 3, 15), 2, (3,), stride=2, padding=1, dilation=3, seed=11),
    # 'same' (asymmetric when dilation*(k-1) is odd) and 'valid'
    ConvCase((2, 3, 7), 2, (3,), padding="same", seed=12),
    ConvCase((2, 2, 8), 3, (2,), padding="same", seed=13),
    ConvCase((1, 2, 9), 2, (4,), padding="same", dilation=3, bias=False, seed=14),
    ConvCase((2, 3, 9), 2, (3,), stride=2, padding="valid", seed=15),
    # groups and depthwise
    ConvCase((2, 4, 9), 6, (3,), padding=1, groups=2, seed=16),
    ConvCase((1, 4, 13), 4, (3,), stride=2, padding=2, dilation=2, groups=2, bias=False, seed=17),
    ConvCase((2, 3, 8), 3, (3,), padding="same", groups=3, seed=18),  # depthwise
    ConvCase((2, 3, 10), 6, (2,), stride=3, groups=3, seed=19),
]
CASES_3D = [
    ConvCase((2, 2, 3, 4, 4), 3, (2, 2, 2), seed=31),
    ConvCase((1, 2, 4, 5, 4), 2, (3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1), seed=32),
    ConvCase((1, 2, 5, 4, 6), 2, (2, 2, 3), dilation=(2, 1, 2), padding=1, bias=False, seed=33),
    ConvCase((1, 4, 3, 4, 5), 4, (3, 1, 2), padding="same", groups=2, seed=34),
    ConvCase((1, 3, 4, 4, 4), 3, (2, 2, 2), stride=3, padding="valid", groups=3, seed=35),
    ConvCase((1, 2, 5, 5, 5), 4, (3, 3, 3), stride=2, padding=1, dilation=(1, 2, 1), groups=2,
             seed=36),
]
CASES = CASES_1D + CASES_3D


def make_inputs(case: ConvCase, dtype: type) -> dict[str, np.ndarray | None]:
    """Seeded inputs and a random upstream gradient (all ones hides a missing flip or stride)."""
    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal(case.input_shape).astype(dtype)
    weight = rng.standard_normal(case.weight_shape).astype(dtype)
    bias = rng.standard_normal(case.out_channels).astype(dtype) if case.bias else None
    out_shape = torch_conv(case, x, weight, bias)[0].shape
    dout = rng.standard_normal(out_shape).astype(dtype)
    return {"x": x, "weight": weight, "bias": bias, "dout": dout}


def torch_conv(case, x, weight, bias, dout=None):
    """torch autograd in float64: (output, (grad_input, grad_weight, grad_bias))."""
    leaves = [None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)
              for a in (x, weight, bias)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using padding='same'", category=UserWarning)
        out = LAYERS[case.ndim][4](*leaves, **case.hyperparameters)
    if dout is None:
        return out.detach().numpy(), (None, None, None)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), tuple(None if t is None else t.grad.numpy() for t in leaves)


def run_layer(forward, backward, case, inputs):
    out, cache = forward(inputs["x"], inputs["weight"], inputs["bias"], **case.hyperparameters)
    return out, tuple(backward(inputs["dout"], cache))


def assert_close(actual, expected, *, rtol, name, case):
    """Closeness relative to the largest reference magnitude; the message says what and where."""
    if expected is None:
        assert actual is None, f"{name} should be None [{case.id}]"
        return
    assert actual is not None and actual.shape == expected.shape, (
        f"{name} has shape {None if actual is None else actual.shape}, "
        f"but should be {expected.shape} [{case.id}]"
    )
    tolerance = rtol * max(1.0, float(np.abs(expected).max()))
    error = np.abs(actual.astype(np.float64) - expected)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(error), error.shape))
    assert error.max() <= tolerance, (
        f"{name}: {int((error > tolerance).sum())} / {error.size} mismatched, greatest absolute "
        f"difference {error.max():.3g} at index {worst} (up to {tolerance:.3g} allowed) "
        f"[{case.id}]"
    )


def assert_all_close(out, grads, expected_out, expected_grads, *, rtol, case):
    assert_close(out, expected_out, rtol=rtol, name="output", case=case)
    for name, actual, expected in zip(GRAD_NAMES, grads, expected_grads):
        assert_close(actual, expected, rtol=rtol, name=name, case=case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_float64_matches_torch(case: ConvCase) -> None:
    forward, backward = LAYERS[case.ndim][:2]
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(forward, backward, case, inputs)
    assert out.dtype == np.float64 and all(g is None or g.dtype == np.float64 for g in grads)
    assert_all_close(out, grads, *torch_conv(case, **inputs), rtol=1e-10, case=case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_float64_matches_loop_twin(case: ConvCase) -> None:
    forward, backward, forward_loops, backward_loops = LAYERS[case.ndim][:4]
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(forward, backward, case, inputs)
    twin_out, twin_grads = run_layer(forward_loops, backward_loops, case, inputs)
    assert_all_close(out, grads, twin_out, twin_grads, rtol=1e-10, case=case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_float32_dtype_and_close_to_torch_float64(case: ConvCase) -> None:
    forward, backward = LAYERS[case.ndim][:2]
    inputs = make_inputs(case, np.float32)
    out, grads = run_layer(forward, backward, case, inputs)
    for name, array in zip(("output", *GRAD_NAMES), (out, *grads)):
        assert array is None or array.dtype == np.float32, f"{name} is {array.dtype} [{case.id}]"
    # The reference sees the same float32 values, computed in float64.
    assert_all_close(out, grads, *torch_conv(case, **inputs), rtol=1e-5, case=case)


TWIN_CHECK = [c for c in CASES if c.seed in {7, 9, 11, 13, 17, 32, 36}]


@pytest.mark.parametrize("case", TWIN_CHECK, ids=lambda case: case.id)
def test_loop_twin_matches_torch(case: ConvCase) -> None:
    forward_loops, backward_loops = LAYERS[case.ndim][2:4]
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(forward_loops, backward_loops, case, inputs)
    assert_all_close(out, grads, *torch_conv(case, **inputs), rtol=1e-10, case=case)


@pytest.mark.parametrize("case", [c for c in CASES if c.seed in {8, 17, 34}],
                         ids=lambda case: case.id)
def test_inputs_not_mutated_and_results_fresh(case: ConvCase) -> None:
    forward, backward = LAYERS[case.ndim][:2]
    inputs = make_inputs(case, np.float64)
    originals = {name: None if a is None else a.copy() for name, a in inputs.items()}
    for array in inputs.values():
        if array is not None:
            array.flags.writeable = False  # an in-place write raises instead of passing silently
    out, grads = run_layer(forward, backward, case, inputs)
    for name, array in inputs.items():
        if array is not None:
            np.testing.assert_array_equal(array, originals[name], err_msg=f"{name} [{case.id}]")
    for result in (out, *grads):
        if result is not None:
            assert not any(np.shares_memory(result, a) for a in inputs.values() if a is not None)


def test_conv1d_hand_worked_example() -> None:
    """x = [1, 2, 3, 4, 5], kernel [1, -1, 2], stride 2, padding 1, worked out by hand."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])[None, None]
    weight = np.array([1.0, -1.0, 2.0])[None, None]
    out, cache = conv1d_forward(x, weight, np.array([0.5]), stride=2, padding=1, dilation=1,
                                groups=1)
    # padded x = [0, 1, 2, 3, 4, 5, 0]; windows start at 0, 2, 4 (no flip):
    # 0 - 1 + 4 = 3, 2 - 3 + 8 = 7, 4 - 5 + 0 = -1, each + 0.5.
    np.testing.assert_array_equal(out[0, 0], [3.5, 7.5, -0.5])
    grad_input, grad_weight, grad_bias = conv1d_backward(np.array([[[1.0, 2.0, -1.0]]]), cache)
    np.testing.assert_array_equal(grad_bias, [2.0])
    # grad_weight[j] = sum_o dout[o] * x_pad[2o + j]: [0 + 4 - 4, 1 + 6 - 5, 2 + 8 + 0].
    np.testing.assert_array_equal(grad_weight[0, 0], [0.0, 2.0, 10.0])
    # x_pad[y] gets dout[o] * w[y - 2o]: y=1: 1*(-1); y=2: 1*2 + 2*1; y=3: 2*(-1);
    # y=4: 2*2 + (-1)*1; y=5: (-1)*(-1).
    np.testing.assert_array_equal(grad_input[0, 0], [-1.0, 4.0, -2.0, 3.0, 1.0])


def test_same_padding_splits_like_torch() -> None:
    # dilation*(k-1) = 3: one before, two after; conv3d axes independently.
    assert resolve_padding_nd("same", (4,), (1,), (1,)) == ((1, 2),)
    assert resolve_padding_nd("same", (2, 3, 2), (1, 1, 1), (3, 1, 2)) == ((1, 2), (1, 1), (1, 1))
    assert resolve_padding_nd(2, (3, 3, 3), (1, 1, 1), (1, 1, 1)) == ((2, 2),) * 3


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "hyper"),
    [
        ((1, 2, 6), (2, 2, 3), {"stride": 2, "padding": "same"}),  # 'same' needs stride 1
        ((1, 2, 6), (2, 2, 3), {"padding": -1}),
        ((1, 2, 6), (2, 2, 3), {"padding": "full"}),
        ((1, 2, 3), (2, 2, 3), {"dilation": 2}),  # dilated kernel larger than the input
        ((1, 2, 6), (3, 1, 3), {"groups": 2}),  # out channels not divisible by groups
        ((1, 3, 6), (2, 1, 3), {"groups": 2}),  # in channels not divisible by groups
        ((1, 2, 6), (2, 2, 3), {"stride": 0}),
        ((1, 2, 4, 4, 4), (2, 2, 2, 2, 2), {"stride": (1, 2, 1), "padding": "same"}),
    ],
)
def test_invalid_hyperparameters_raise_like_torch(x_shape, w_shape, hyper) -> None:
    forward, torch_fn = (conv1d_forward, torch.nn.functional.conv1d) if len(x_shape) == 3 else (
        conv3d_forward, torch.nn.functional.conv3d)
    hyper = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **hyper}
    x, weight = np.zeros(x_shape), np.zeros(w_shape)
    with pytest.raises((RuntimeError, ValueError)):
        torch_fn(torch.tensor(x), torch.tensor(weight), None, **hyper)
    with pytest.raises(ValueError):
        forward(x, weight, None, **hyper)


def conv1d_backward_ignoring_stride(dout, cache):
    """Planted mistake: grad_input as a full convolution of dout NOT dilated by the stride."""
    _, grad_weight, grad_bias = conv1d_backward(dout, cache)
    grad_input = conv_input_gradient(
        dout, cache.weight, input_size=cache.input_shape[2:], padding=cache.padding,
        stride=(1,), dilation=cache.dilation, groups=cache.groups,
    )
    return grad_input, grad_weight, grad_bias


def test_planted_dx_ignoring_stride_is_caught() -> None:
    # Seed 9 is left out: its windows all lie in the padding, so grad_input is zero either way.
    strided = [c for c in CASES_1D if c.stride not in (1, (1,)) and c.seed != 9]
    unit_stride = [c for c in CASES_1D if c.stride in (1, (1,))]
    for case in strided:
        inputs = make_inputs(case, np.float64)
        out, grads = run_layer(conv1d_forward, conv1d_backward_ignoring_stride, case, inputs)
        _expected_out, expected_grads = torch_conv(case, **inputs)
        with pytest.raises(AssertionError, match="grad_input"):
            assert_close(grads[0], expected_grads[0], rtol=1e-10, name="grad_input", case=case)
    # The mistake is invisible at stride 1, which is why the table needs strided rows.
    for case in unit_stride[:3]:
        inputs = make_inputs(case, np.float64)
        out, grads = run_layer(conv1d_forward, conv1d_backward_ignoring_stride, case, inputs)
        assert_all_close(out, grads, *torch_conv(case, **inputs), rtol=1e-10, case=case)
