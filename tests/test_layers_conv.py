"""Tests of the built-in conv2d layer: torch autograd, a loop twin and a hand-worked example."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from twins_conv import conv2d_backward_loops, conv2d_forward_loops

from refcheck.layers.conv import (
    conv2d_backward,
    conv2d_forward,
    conv2d_output_size,
    dilate,
    pad,
    resolve_padding,
    rotate_180,
)

Pair = tuple[int, int]
GRAD_NAMES = ("grad_input", "grad_weight", "grad_bias")


@dataclass(frozen=True)
class ConvCase:
    """One conv2d configuration; ``id`` doubles as the pytest id."""

    input_shape: tuple[int, int, int, int]  # (N, C, H, W)
    out_channels: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: str | Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    seed: int = 0

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.input_shape[1] // self.groups, *self.kernel_size)

    @property
    def hyperparameters(self) -> dict:
        return {
            "stride": self.stride, "padding": self.padding,
            "dilation": self.dilation, "groups": self.groups,
        }

    @property
    def id(self) -> str:
        def fmt(pair: str | Pair) -> str:
            return pair if isinstance(pair, str) else f"{pair[0]}x{pair[1]}"

        shape = "x".join(map(str, self.input_shape))
        return (
            f"in{shape}-f{self.out_channels}-k{fmt(self.kernel_size)}-s{fmt(self.stride)}"
            f"-p{fmt(self.padding)}-d{fmt(self.dilation)}-g{self.groups}"
            f"-{'b' if self.bias else 'nob'}"
        )


# Each row covers at least one value the table must reach; several combine them.
CASES = [
    # kernel sizes
    ConvCase((2, 3, 5, 4), 4, (1, 1), seed=1),
    ConvCase((2, 3, 6, 5), 2, (2, 2), padding=(1, 1), bias=False, seed=2),
    ConvCase((2, 3, 7, 6), 4, (3, 3), padding=(1, 1), seed=3),
    ConvCase((1, 2, 7, 5), 3, (3, 2), stride=(2, 1), padding=(1, 0), seed=4),
    ConvCase((1, 2, 9, 8), 2, (5, 5), padding=(2, 2), seed=5),
    ConvCase((1, 1, 5, 4), 1, (5, 4), seed=6),  # 1x1 output: kernel covers the whole input
    # strides, including rows/cols the strided forward never reaches
    ConvCase((2, 3, 8, 7), 4, (3, 3), stride=(2, 2), padding=(1, 1), seed=7),
    ConvCase((2, 2, 10, 9), 3, (3, 3), stride=(3, 3), seed=8),
    ConvCase((1, 2, 8, 7), 2, (2, 2), stride=(3, 3), padding=(2, 2), bias=False, seed=9),
    ConvCase((2, 2, 7, 6), 3, (3, 3), stride=(2, 1), padding=(1, 0), seed=10),
    ConvCase((1, 2, 9, 11), 2, (5, 5), stride=(3, 2), padding=(2, 1), seed=11),
    # the only window lies wholly in the padding: output is the bias, grad_input is zero
    ConvCase((1, 2, 2, 3), 2, (1, 1), stride=(9, 9), padding=(3, 3), seed=31),
    # dilations
    ConvCase((2, 2, 9, 8), 3, (3, 3), padding=(2, 2), dilation=(2, 2), seed=12),
    ConvCase((1, 3, 8, 6), 2, (3, 3), padding=(2, 1), dilation=(2, 1), bias=False, seed=13),
    ConvCase((1, 3, 11, 10), 4, (3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), seed=14),
    ConvCase((1, 2, 12, 9), 2, (3, 2), stride=(3, 2), padding=(1, 0), dilation=(2, 1), seed=15),
    # 'same' (asymmetric when dilation*(k-1) is odd) and 'valid'
    ConvCase((2, 3, 6, 5), 2, (3, 3), padding="same", seed=16),
    ConvCase((2, 2, 5, 6), 3, (2, 2), padding="same", seed=17),
    ConvCase((1, 2, 6, 7), 2, (3, 2), padding="same", dilation=(2, 1), bias=False, seed=18),
    ConvCase((1, 2, 7, 6), 2, (2, 2), padding="same", dilation=(3, 2), seed=19),
    ConvCase((1, 2, 8, 9), 2, (5, 5), padding="same", dilation=(2, 1), seed=20),
    ConvCase((2, 3, 6, 7), 2, (3, 3), padding="valid", seed=21),
    ConvCase((1, 2, 7, 8), 3, (2, 2), stride=(2, 2), padding="valid", bias=False, seed=22),
    # groups and depthwise
    ConvCase((2, 4, 6, 5), 6, (3, 3), padding=(1, 1), groups=2, seed=23),
    ConvCase((1, 4, 9, 8), 2, (3, 2), stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=2,
             bias=False, seed=24),
    ConvCase((2, 4, 6, 7), 4, (2, 2), padding="same", dilation=(1, 2), groups=2, seed=25),
    ConvCase((2, 3, 6, 6), 3, (3, 3), padding=(1, 1), groups=3, seed=26),  # depthwise
    ConvCase((2, 3, 7, 5), 6, (3, 2), stride=(2, 1), padding="valid", groups=3, seed=27),
    ConvCase((1, 3, 6, 7), 6, (2, 2), padding="same", groups=3, bias=False, seed=28),
    ConvCase((1, 2, 9, 8), 4, (5, 5), stride=(3, 3), padding=(2, 2), dilation=(1, 1), groups=2,
             seed=29),
    ConvCase((1, 4, 10, 9), 4, (3, 3), stride=(2, 1), padding=(1, 0), dilation=(2, 1), groups=4,
             seed=30),
]
CASE_IDS = [case.id for case in CASES]
# A few rows (asymmetric 'same', stride with unreached rows, dilation, groups) on which the
# loop twin itself is checked against torch.
TWIN_CHECK_CASES = [case for case in CASES if case.seed in {8, 10, 12, 17, 19, 24, 27}]


def make_inputs(case: ConvCase, dtype: type) -> dict[str, np.ndarray | None]:
    """Seeded inputs and a random upstream gradient (all ones would hide a missing kernel flip)."""
    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal(case.input_shape).astype(dtype)
    weight = rng.standard_normal(case.weight_shape).astype(dtype)
    bias = rng.standard_normal(case.out_channels).astype(dtype) if case.bias else None
    out_shape = torch_conv2d(case, x, weight, bias)[0].shape
    dout = rng.standard_normal(out_shape).astype(dtype)
    return {"x": x, "weight": weight, "bias": bias, "dout": dout}


def torch_conv2d(
    case: ConvCase, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
    dout: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray | None, ...]]:
    """torch autograd in float64: (output, (grad_input, grad_weight, grad_bias)).

    Without ``dout`` only the output is computed and the gradients are None.
    """
    leaves = [
        None if array is None else torch.tensor(array, dtype=torch.float64, requires_grad=True)
        for array in (x, weight, bias)
    ]
    with warnings.catch_warnings():
        # torch warns (once per process) that asymmetric 'same' padding copies the input.
        warnings.filterwarnings("ignore", message="Using padding='same'", category=UserWarning)
        out = torch.nn.functional.conv2d(*leaves, **case.hyperparameters)
    if dout is None:
        return out.detach().numpy(), (None, None, None)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    grads = tuple(None if leaf is None else leaf.grad.numpy() for leaf in leaves)
    return out.detach().numpy(), grads


def run_layer(forward, backward, case: ConvCase, inputs: dict) -> tuple[np.ndarray, tuple]:
    out, cache = forward(inputs["x"], inputs["weight"], inputs["bias"], **case.hyperparameters)
    return out, tuple(backward(inputs["dout"], cache))


def assert_close(actual, expected, *, rtol: float, name: str, case: ConvCase) -> None:
    """Closeness relative to the largest reference magnitude; the message says what and where."""
    if expected is None:
        assert actual is None, f"{name} should be None (no bias) [{case.id}]"
        return
    assert actual is not None, f"{name} is None but should be an array [{case.id}]"
    assert actual.shape == expected.shape, (
        f"{name} has shape {actual.shape}, but should be {expected.shape} [{case.id}]"
    )
    tolerance = rtol * max(1.0, float(np.abs(expected).max()))
    error = np.abs(actual.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(error), error.shape)
    assert error.max() <= tolerance, (
        f"{name}: {int((error > tolerance).sum())} / {error.size} mismatched, greatest absolute "
        f"difference {error.max():.3g} at index {tuple(map(int, worst))} "
        f"(up to {tolerance:.3g} allowed) [{case.id}]"
    )


def assert_all_close(actual_out, actual_grads, expected_out, expected_grads, *, rtol, case):
    assert_close(actual_out, expected_out, rtol=rtol, name="output", case=case)
    for name, actual, expected in zip(GRAD_NAMES, actual_grads, expected_grads):
        assert_close(actual, expected, rtol=rtol, name=name, case=case)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float64_matches_torch(case: ConvCase) -> None:
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(conv2d_forward, conv2d_backward, case, inputs)
    expected_out, expected_grads = torch_conv2d(case, **inputs)
    assert out.dtype == np.float64 and all(g is None or g.dtype == np.float64 for g in grads)
    assert_all_close(out, grads, expected_out, expected_grads, rtol=1e-10, case=case)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float64_matches_loop_twin(case: ConvCase) -> None:
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(conv2d_forward, conv2d_backward, case, inputs)
    twin_out, twin_grads = run_layer(conv2d_forward_loops, conv2d_backward_loops, case, inputs)
    assert_all_close(out, grads, twin_out, twin_grads, rtol=1e-10, case=case)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float32_dtype_and_close_to_torch_float64(case: ConvCase) -> None:
    inputs = make_inputs(case, np.float32)
    out, grads = run_layer(conv2d_forward, conv2d_backward, case, inputs)
    for name, array in zip(("output", *GRAD_NAMES), (out, *grads)):
        assert array is None or array.dtype == np.float32, f"{name} is {array.dtype} [{case.id}]"
    # The reference sees the same float32 values, computed in float64.
    expected_out, expected_grads = torch_conv2d(case, **inputs)
    assert_all_close(out, grads, expected_out, expected_grads, rtol=1e-5, case=case)


@pytest.mark.parametrize("case", TWIN_CHECK_CASES, ids=[case.id for case in TWIN_CHECK_CASES])
def test_loop_twin_matches_torch(case: ConvCase) -> None:
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(conv2d_forward_loops, conv2d_backward_loops, case, inputs)
    expected_out, expected_grads = torch_conv2d(case, **inputs)
    assert_all_close(out, grads, expected_out, expected_grads, rtol=1e-10, case=case)


@pytest.mark.parametrize(
    "case", [case for case in CASES if case.seed in {9, 17, 24}], ids=lambda case: case.id
)
def test_inputs_not_mutated(case: ConvCase) -> None:
    inputs = make_inputs(case, np.float64)
    originals = {name: None if a is None else a.copy() for name, a in inputs.items()}
    for array in inputs.values():
        if array is not None:
            array.flags.writeable = False  # any in-place write raises instead of passing silently
    out, grads = run_layer(conv2d_forward, conv2d_backward, case, inputs)
    for name, array in inputs.items():
        if array is not None:
            np.testing.assert_array_equal(array, originals[name], err_msg=f"{name} [{case.id}]")
    # Results must be fresh arrays, not views into the caller's tensors.
    for result in (out, *grads):
        if result is not None:
            assert not any(
                np.shares_memory(result, a) for a in inputs.values() if a is not None
            ), case.id


def test_hand_worked_example() -> None:
    """3x3 input, 2x2 kernel, stride 1, no padding, worked out by hand entry by entry."""
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])[None, None]
    weight = np.array([[1.0, 2.0], [3.0, 4.0]])[None, None]
    bias = np.array([0.5])
    dout = np.array([[1.0, -1.0], [2.0, 3.0]])[None, None]
    out, cache = conv2d_forward(
        x, weight, bias, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1
    )
    # Cross-correlation (no flip): out[0,0] = 1*1 + 2*2 + 4*3 + 5*4 + 0.5 = 37.5, and so on.
    np.testing.assert_array_equal(out[0, 0], [[37.5, 47.5], [67.5, 77.5]])
    grad_input, grad_weight, grad_bias = conv2d_backward(dout, cache)
    # grad_bias = 1 - 1 + 2 + 3.
    np.testing.assert_array_equal(grad_bias, [5.0])
    # grad_weight[i,j] = sum dout[a,b] * x[a+i, b+j], e.g. [0,0] = 1*1 - 1*2 + 2*4 + 3*5 = 22.
    np.testing.assert_array_equal(grad_weight[0, 0], [[22.0, 27.0], [37.0, 42.0]])
    # grad_input[y,x] = sum dout[a,b] * w[y-a, x-b] (full convolution), e.g. the centre is
    # dout00*w11 + dout01*w10 + dout10*w01 + dout11*w00 = 4 - 3 + 4 + 3 = 8.
    np.testing.assert_array_equal(
        grad_input[0, 0], [[1.0, 1.0, -2.0], [5.0, 8.0, 2.0], [6.0, 17.0, 12.0]]
    )


def test_same_padding_is_asymmetric_like_torch() -> None:
    # dilation*(k-1) = 3 rows: 1 on top, 2 at the bottom; 1 column: 0 left, 1 right.
    assert resolve_padding("same", (4, 2), (1, 1), (1, 1)) == ((1, 2), (0, 1))
    assert resolve_padding("same", (2, 3), (1, 1), (3, 2)) == ((1, 2), (2, 2))
    assert resolve_padding("valid", (3, 3), (2, 2), (1, 1)) == ((0, 0), (0, 0))
    assert resolve_padding((2, 1), (3, 3), (2, 2), (1, 1)) == ((2, 2), (1, 1))
    with pytest.raises(ValueError, match="stride"):
        resolve_padding("same", (3, 3), (2, 1), (1, 1))


def test_array_helpers() -> None:
    block = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(
        dilate(block, (2, 3))[0, 0], [[1, 0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 4]]
    )
    np.testing.assert_array_equal(
        pad(block, ((0, 1), (1, 0)))[0, 0], [[0, 1, 2], [0, 3, 4], [0, 0, 0]]
    )
    np.testing.assert_array_equal(rotate_180(block)[0, 0], [[4, 3], [2, 1]])
    # H=10, padding 1+1, kernel 3 dilated by 2 (extent 5), stride 3: (10 + 2 - 5) // 3 + 1 = 3.
    assert conv2d_output_size(10, 3, 3, 2, 2) == 3
    assert conv2d_output_size(3, 3, 1, 0, 2) < 1


def test_kernel_larger_than_padded_input_raises() -> None:
    x = np.zeros((1, 1, 3, 3))
    weight = np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError):
        conv2d_forward(x, weight, None, stride=(1, 1), padding=(0, 0), dilation=(2, 2), groups=1)


@pytest.mark.parametrize("hp", [
    {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1, "filters": 4},
    {"stride": (2, 1), "padding": (2, 0), "dilation": (1, 2), "groups": 2, "filters": 4},
    {"stride": (1, 1), "padding": (0, 1), "dilation": (1, 1), "groups": 1, "filters": 6},  # col2im at stride 1
    {"stride": (2, 2), "padding": (1, 1), "dilation": (1, 1), "groups": 4, "filters": 4},  # depthwise
], ids=["unit-stride", "strided-grouped", "more-filters", "depthwise"])
def test_grad_input_a_few_images_at_a_time_is_the_whole_batch(hp, monkeypatch) -> None:
    from refcheck.layers import conv

    rng = np.random.default_rng(3)
    filters, groups = hp.pop("filters"), hp["groups"]
    x = rng.standard_normal((5, 4, 7, 6)).astype(np.float32)
    weight = rng.standard_normal((filters, 4 // groups, 3, 2)).astype(np.float32)
    out, cache = conv2d_forward(x, weight, None, **hp)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    whole = conv2d_backward(dout, cache)
    monkeypatch.setattr(conv, "_BLOCK_BYTES", 1)  # one image per block
    one_by_one = conv2d_backward(dout, cache)
    monkeypatch.setattr(conv, "_BLOCK_BYTES", 2 * one_by_one[0][0].size * 4 * 3 * 2 * max(filters, 4))  # two images
    pairs = conv2d_backward(dout, cache)
    # The same sums per image; BLAS may round a smaller product differently (by an ulp or so).
    for blocked in (one_by_one, pairs):
        np.testing.assert_array_equal(blocked[1], whole[1])  # grad_weight is not blocked
        np.testing.assert_allclose(blocked[0], whole[0], rtol=4e-6, atol=4e-6)
    twin_grads = conv2d_backward_loops(dout, conv2d_forward_loops(x, weight, None, **hp)[1])
    np.testing.assert_allclose(one_by_one[0], twin_grads[0], rtol=1e-4, atol=1e-4)
