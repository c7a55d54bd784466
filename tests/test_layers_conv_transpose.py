"""Tests of the built-in conv_transpose2d: torch autograd, a gather-form loop twin, the identity
"conv_transpose2d(dout, W) is conv2d's input gradient", validity rules and planted mistakes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from twins_conv_nd import (
    conv_transpose2d_backward_loops,
    conv_transpose2d_forward_loops,
)

from refcheck.layers.conv_core import cross_correlate_nd, pad_nd
from refcheck.layers.conv_transpose import (
    conv_transpose2d_backward,
    conv_transpose2d_forward,
    conv_transpose2d_output_size,
)

Pair = tuple[int, int]
GRAD_NAMES = ("grad_input", "grad_weight", "grad_bias")


@dataclass(frozen=True)
class Case:
    """One conv_transpose2d configuration; ``id`` doubles as the pytest id."""

    input_shape: tuple[int, int, int, int]  # (N, C_in, H, W)
    out_channels: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    output_padding: Pair = (0, 0)
    groups: int = 1
    dilation: Pair = (1, 1)
    bias: bool = True
    seed: int = 0

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.input_shape[1], self.out_channels // self.groups, *self.kernel_size)

    @property
    def hyperparameters(self) -> dict:
        return {"stride": self.stride, "padding": self.padding,
                "output_padding": self.output_padding, "groups": self.groups,
                "dilation": self.dilation}

    @property
    def id(self) -> str:
        def fmt(pair: Pair) -> str:
            return f"{pair[0]}x{pair[1]}"

        return (
            f"in{'x'.join(map(str, self.input_shape))}-f{self.out_channels}"
            f"-k{fmt(self.kernel_size)}-s{fmt(self.stride)}-p{fmt(self.padding)}"
            f"-op{fmt(self.output_padding)}-d{fmt(self.dilation)}-g{self.groups}"
            f"-{'b' if self.bias else 'nob'}"
        )


CASES = [
    Case((2, 3, 4, 3), 2, (1, 1), seed=1),
    Case((2, 2, 3, 4), 3, (2, 2), seed=2),
    Case((2, 3, 3, 3), 3, (3, 3), padding=(1, 1), bias=False, seed=3),
    Case((1, 2, 4, 3), 2, (3, 2), seed=4),  # asymmetric kernel catches a missing flip per axis
    # strides, with and without output_padding
    Case((2, 2, 3, 4), 3, (3, 3), stride=(2, 2), seed=5),
    Case((2, 3, 4, 3), 2, (3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), seed=6),
    Case((1, 2, 3, 3), 2, (2, 3), stride=(3, 2), padding=(0, 1), output_padding=(2, 1), seed=7),
    Case((1, 2, 4, 4), 2, (2, 2), stride=(3, 1), output_padding=(1, 0), bias=False, seed=8),
    Case((1, 2, 2, 3), 3, (1, 1), stride=(4, 3), output_padding=(3, 2), seed=9),  # 1x1 kernel
    # dilation; output_padding allowed by dilation alone (stride 1)
    Case((2, 2, 3, 4), 2, (3, 3), dilation=(2, 2), padding=(1, 2), seed=10),
    Case((1, 2, 3, 3), 3, (2, 3), dilation=(3, 2), output_padding=(2, 1), seed=11),
    Case((1, 3, 3, 4), 2, (3, 2), stride=(2, 3), dilation=(2, 2), padding=(2, 1),
         output_padding=(1, 0), seed=12),
    # padding that crops nearly everything
    Case((1, 2, 3, 3), 2, (2, 2), padding=(1, 1), seed=13),
    # groups and depthwise
    Case((2, 4, 3, 3), 6, (3, 3), padding=(1, 1), groups=2, seed=14),
    Case((1, 4, 3, 4), 4, (2, 3), stride=(2, 2), output_padding=(1, 1), groups=2, bias=False,
         seed=15),
    Case((2, 3, 4, 3), 3, (3, 3), stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=3,
         seed=16),
    Case((1, 3, 3, 3), 6, (2, 2), stride=(2, 2), dilation=(2, 1), output_padding=(1, 0),
         groups=3, seed=17),
]


def make_inputs(case: Case, dtype: type) -> dict[str, np.ndarray | None]:
    """Seeded inputs and a random upstream gradient (never all ones)."""
    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal(case.input_shape).astype(dtype)
    weight = rng.standard_normal(case.weight_shape).astype(dtype)
    bias = rng.standard_normal(case.out_channels).astype(dtype) if case.bias else None
    out_shape = (case.input_shape[0], case.out_channels) + tuple(
        conv_transpose2d_output_size(size, k, s, p, d, op)
        for size, k, s, p, d, op in zip(case.input_shape[2:], case.kernel_size, case.stride,
                                        case.padding, case.dilation, case.output_padding)
    )
    dout = rng.standard_normal(out_shape).astype(dtype)
    return {"x": x, "weight": weight, "bias": bias, "dout": dout}


def torch_conv_transpose2d(case, x, weight, bias, dout):
    """torch autograd in float64: (output, (grad_input, grad_weight, grad_bias))."""
    leaves = [None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)
              for a in (x, weight, bias)]
    out = F.conv_transpose2d(*leaves, **case.hyperparameters)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), tuple(None if t is None else t.grad.numpy() for t in leaves)


def run_layer(forward, backward, case, inputs):
    out, cache = forward(inputs["x"], inputs["weight"], inputs["bias"], **case.hyperparameters)
    return out, tuple(backward(inputs["dout"], cache))


def assert_close(actual, expected, *, rtol, name, case_id):
    """Closeness relative to the largest reference magnitude; the message says what and where."""
    if expected is None:
        assert actual is None, f"{name} should be None [{case_id}]"
        return
    assert actual is not None and actual.shape == expected.shape, (
        f"{name} has shape {None if actual is None else actual.shape}, "
        f"but should be {expected.shape} [{case_id}]"
    )
    tolerance = rtol * max(1.0, float(np.abs(expected).max()))
    error = np.abs(actual.astype(np.float64) - expected)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(error), error.shape))
    assert error.max() <= tolerance, (
        f"{name}: {int((error > tolerance).sum())} / {error.size} mismatched, greatest absolute "
        f"difference {error.max():.3g} at index {worst} (up to {tolerance:.3g} allowed) "
        f"[{case_id}]"
    )


def assert_all_close(out, grads, expected_out, expected_grads, *, rtol, case):
    assert_close(out, expected_out, rtol=rtol, name="output", case_id=case.id)
    for name, actual, expected in zip(GRAD_NAMES, grads, expected_grads):
        assert_close(actual, expected, rtol=rtol, name=name, case_id=case.id)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_float64_matches_torch(case: Case) -> None:
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(conv_transpose2d_forward, conv_transpose2d_backward, case, inputs)
    assert out.dtype == np.float64 and all(g is None or g.dtype == np.float64 for g in grads)
    assert_all_close(out, grads, *torch_conv_transpose2d(case, **inputs), rtol=1e-10, case=case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_float64_matches_loop_twin(case: Case) -> None:
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(conv_transpose2d_forward, conv_transpose2d_backward, case, inputs)
    twin = run_layer(conv_transpose2d_forward_loops, conv_transpose2d_backward_loops, case, inputs)
    assert_all_close(out, grads, *twin, rtol=1e-10, case=case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_float32_dtype_and_close_to_torch_float64(case: Case) -> None:
    inputs = make_inputs(case, np.float32)
    out, grads = run_layer(conv_transpose2d_forward, conv_transpose2d_backward, case, inputs)
    for name, array in zip(("output", *GRAD_NAMES), (out, *grads)):
        assert array is None or array.dtype == np.float32, f"{name} is {array.dtype} [{case.id}]"
    assert_all_close(out, grads, *torch_conv_transpose2d(case, **inputs), rtol=1e-5, case=case)


@pytest.mark.parametrize("case", [c for c in CASES if c.seed in {7, 11, 12, 17}],
                         ids=lambda case: case.id)
def test_loop_twin_matches_torch(case: Case) -> None:
    inputs = make_inputs(case, np.float64)
    twin = run_layer(conv_transpose2d_forward_loops, conv_transpose2d_backward_loops, case, inputs)
    assert_all_close(*twin, *torch_conv_transpose2d(case, **inputs), rtol=1e-10, case=case)


def test_inputs_not_mutated_and_results_fresh() -> None:
    case = CASES[14]
    inputs = make_inputs(case, np.float64)
    inputs["bias"] = np.arange(float(case.out_channels))
    originals = {name: a.copy() for name, a in inputs.items()}
    for array in inputs.values():
        array.flags.writeable = False
    out, grads = run_layer(conv_transpose2d_forward, conv_transpose2d_backward, case, inputs)
    for name, array in inputs.items():
        np.testing.assert_array_equal(array, originals[name], err_msg=name)
    for result in (out, *grads):
        assert not any(np.shares_memory(result, a) for a in inputs.values())


# (x shape, conv2d weight shape (F, C // groups, kh, kw), stride, padding, dilation, groups)
CONV2D_SETTINGS = [
    ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 3, 8, 7), (2, 3, 3, 2), (2, 3), (1, 0), (1, 1), 1),  # unreached rows: op > 0
    ((1, 2, 9, 8), (3, 2, 2, 3), (3, 2), (0, 1), (2, 1), 1),
    ((1, 4, 9, 10), (6, 2, 3, 3), (2, 2), (2, 1), (2, 3), 2),
    ((2, 3, 7, 7), (3, 1, 3, 3), (2, 1), (1, 1), (1, 1), 3),  # depthwise
]


@pytest.mark.parametrize("setting", CONV2D_SETTINGS, ids=str)
def test_conv_transpose2d_of_dout_is_conv2d_input_gradient(setting) -> None:
    """grad_x of conv2d(x, W) == conv_transpose2d(dout, W) with conv2d's own hyperparameters and
    the output_padding that restores x's size -- in torch, and in the layer here."""
    x_shape, w_shape, stride, padding, dilation, groups = setting
    rng = np.random.default_rng(len(str(setting)))
    x = torch.tensor(rng.standard_normal(x_shape), requires_grad=True)
    weight = torch.tensor(rng.standard_normal(w_shape))
    y = F.conv2d(x, weight, None, stride=stride, padding=padding, dilation=dilation, groups=groups)
    dout = torch.tensor(rng.standard_normal(y.shape))
    y.backward(dout)
    output_padding = tuple(
        size + 2 * p - d * (k - 1) - 1 - (o - 1) * s
        for size, p, d, k, o, s in zip(x_shape[2:], padding, dilation, w_shape[2:], y.shape[2:],
                                       stride)
    )
    hyper = {"stride": stride, "padding": padding, "output_padding": output_padding,
             "groups": groups, "dilation": dilation}
    through_torch = F.conv_transpose2d(dout, weight, None, **hyper)
    np.testing.assert_allclose(through_torch.numpy(), x.grad.numpy(), rtol=1e-12, atol=1e-12)
    ours, _ = conv_transpose2d_forward(dout.numpy(), weight.numpy(), None, **hyper)
    np.testing.assert_allclose(ours, x.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_hand_worked_example() -> None:
    """x = [[1, 2]], kernel [[1, 10]], stride 2 along width: each pixel stamps the kernel."""
    x = np.array([[1.0, 2.0]])[None, None]
    weight = np.array([[1.0, 10.0]])[None, None]
    out, cache = conv_transpose2d_forward(x, weight, None, stride=(1, 2), padding=0,
                                          output_padding=(0, 1), groups=1, dilation=1)
    # width (2-1)*2 + (2-1) + 1 + output_padding 1 = 5: [1, 10, 2, 20, 0].
    np.testing.assert_array_equal(out[0, 0], [[1.0, 10.0, 2.0, 20.0, 0.0]])
    grad_input, grad_weight, grad_bias = conv_transpose2d_backward(
        np.array([[[[1.0, 2.0, 3.0, 4.0, 5.0]]]]), cache
    )
    assert grad_bias is None
    # grad_x[iw] = sum_j dout[2*iw + j] * w[j]: [1 + 20, 3 + 40]; the output_padding column
    # (dout 5) reaches no input.
    np.testing.assert_array_equal(grad_input[0, 0], [[21.0, 43.0]])
    # grad_w[j] = sum_iw x[iw] * dout[2*iw + j]: [1 + 6, 2 + 8].
    np.testing.assert_array_equal(grad_weight[0, 0], [[7.0, 10.0]])


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "hyper"),
    [
        ((1, 2, 3, 3), (2, 2, 2, 2), {"stride": 2, "output_padding": 2}),  # op >= s and >= d
        ((1, 2, 3, 3), (2, 2, 2, 2), {"output_padding": 1}),  # stride 1, dilation 1
        ((1, 2, 3, 3), (2, 2, 2, 2), {"stride": 2, "dilation": 2, "output_padding": (1, 2)}),
        ((1, 2, 3, 3), (2, 2, 2, 2), {"padding": 2}),  # output size 0
        ((1, 2, 3, 3), (2, 2, 2, 2), {"padding": -1}),
        ((1, 3, 3, 3), (3, 1, 2, 2), {"groups": 2}),  # C_in not divisible by groups
        ((1, 2, 3, 3), (3, 1, 2, 2), {}),  # weight's first axis must be C_in
        ((1, 2, 3, 3), (2, 2, 2, 2), {"stride": 0}),
    ],
)
def test_invalid_hyperparameters_raise_like_torch(x_shape, w_shape, hyper) -> None:
    hyper = {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1, **hyper}
    x, weight = np.zeros(x_shape), np.zeros(w_shape)
    with pytest.raises(RuntimeError):
        F.conv_transpose2d(torch.tensor(x), torch.tensor(weight), None, **hyper)
    with pytest.raises(ValueError):
        conv_transpose2d_forward(x, weight, None, **hyper)


def test_output_padding_below_dilation_but_not_stride_is_valid() -> None:
    """torch's rule is 'smaller than either stride or dilation': stride 1, dilation 3, op 2."""
    case = Case((1, 2, 3, 3), 2, (2, 2), dilation=(3, 3), output_padding=(2, 2), seed=40)
    inputs = make_inputs(case, np.float64)
    out, grads = run_layer(conv_transpose2d_forward, conv_transpose2d_backward, case, inputs)
    assert_all_close(out, grads, *torch_conv_transpose2d(case, **inputs), rtol=1e-10, case=case)


# Planted mistakes ----------------------------------------------------------------------------

def conv_transpose2d_as_correlation(x, weight, bias, *, stride, padding, output_padding, groups,
                                    dilation, flip=True):
    """conv_transpose2d as a stride-1 cross-correlation of the stride-dilated, fully padded input
    with the channel-swapped kernel, rotated by 180 degrees -- or, with ``flip=False``, the
    classic mistake of not rotating it. Needs padding <= dilation*(k-1)."""
    (batch, channels_in, height, width), kernel = x.shape, weight.shape[2:]
    dilated = np.zeros((batch, channels_in, (height - 1) * stride[0] + 1,
                        (width - 1) * stride[1] + 1))
    dilated[:, :, ::stride[0], ::stride[1]] = x
    sides = tuple((d * (k - 1) - p, d * (k - 1) - p + op)
                  for d, k, p, op in zip(dilation, kernel, padding, output_padding))
    per_group = weight.reshape(groups, channels_in // groups, weight.shape[1], *kernel)
    swapped = per_group.transpose(0, 2, 1, 3, 4).reshape(-1, channels_in // groups, *kernel)
    kernel_used = swapped[..., ::-1, ::-1] if flip else swapped
    out = cross_correlate_nd(pad_nd(dilated, sides), np.ascontiguousarray(kernel_used),
                             stride=(1, 1), dilation=dilation, groups=groups)
    return out if bias is None else out + bias[None, :, None, None]


def conv_transpose2d_weight_read_as_out_in(x, weight, bias, **hyper):
    """Planted mistake: reads the weight as (C_out, C_in, kh, kw) (conv2d's own layout)."""
    return conv_transpose2d_forward(x, weight.transpose(1, 0, 2, 3), bias, **hyper)[0]


CORRELATION_CASES = [c for c in CASES if all(
    p <= d * (k - 1) for p, d, k in zip(c.padding, c.dilation, c.kernel_size))]
MISTAKE_CASES = [c for c in CORRELATION_CASES if c.kernel_size != (1, 1)]


@pytest.mark.parametrize("case", MISTAKE_CASES, ids=lambda case: case.id)
def test_planted_unflipped_kernel_is_caught(case: Case) -> None:
    inputs = make_inputs(case, np.float64)
    expected_out = torch_conv_transpose2d(case, **inputs)[0]
    args = (inputs["x"], inputs["weight"], inputs["bias"])
    # The correct (flipped) variant matches torch: the harness of the mistake is sound ...
    assert_close(conv_transpose2d_as_correlation(*args, **case.hyperparameters), expected_out,
                 rtol=1e-10, name="output", case_id=case.id)
    # ... and dropping the flip is caught.
    with pytest.raises(AssertionError, match="mismatched"):
        assert_close(conv_transpose2d_as_correlation(*args, **case.hyperparameters, flip=False),
                     expected_out, rtol=1e-10, name="output", case_id=case.id)


def test_planted_weight_layout_out_in_is_caught() -> None:
    # Square channel counts (C_in == C_out, groups 1) so the wrong layout still has a valid shape.
    square = [c for c in CASES if c.groups == 1 and c.input_shape[1] == c.out_channels]
    assert len(square) >= 3
    for case in square:
        inputs = make_inputs(case, np.float64)
        expected_out = torch_conv_transpose2d(case, **inputs)[0]
        wrong = conv_transpose2d_weight_read_as_out_in(
            inputs["x"], inputs["weight"], inputs["bias"], **case.hyperparameters
        )
        with pytest.raises(AssertionError, match="mismatched"):
            assert_close(wrong, expected_out, rtol=1e-10, name="output", case_id=case.id)
