"""The fast paths of conv2d and the pooling layers against their derivation-shaped forms and torch.

conv2d's backward computes grad_input by GEMM (stride 1: the full convolution as im2col of the
padded dout; strided: ``W.T @ dout`` and a col2im scatter-add) and grad_weight by ``dout @ cols.T``.
Here both equal the derivation written out (the full convolution of the stride-dilated dout with
the 180-degree-rotated kernel; the cross-correlation of the input with dout) and torch. The pooling
layers' window-copy paths must agree with torch's scan (kept for NaN inputs) on inputs full of
ties, -inf and padding. relu, leaky_relu and sigmoid pick between two arrays with bit masks: bit for bit
np.where's choice, NaN, infinities and signed zeros included.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_layers_conv import (
    CASE_IDS,
    CASES,
    ConvCase,
    assert_close,
    make_inputs,
    torch_conv2d,
)

from refcheck.layers.adaptive import (
    _adaptive_max_scan,
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    adaptive_max_pool2d_backward,
    adaptive_max_pool2d_forward,
    adaptive_windows,
)
from refcheck.layers.conv import (
    _col2im,
    conv2d_backward,
    conv2d_forward,
    conv2d_input_grad_by_full_convolution,
    conv2d_weight_grad_by_cross_correlation,
)
from refcheck.layers.pooling import (
    _axes,
    _max_pool_scan,
    avg_pool2d_backward,
    avg_pool2d_forward,
    first_max,
    max_pool2d_backward,
    max_pool2d_forward,
)

# Every case, depthwise included, takes the GEMMs (one output channel per group: an outer product).
EXTRA_CASES = [
    ConvCase((2, 4, 7, 6), 8, (3, 3), stride=(2, 2), padding=(1, 1), groups=4, seed=40),  # multiplier 2
    ConvCase((2, 4, 7, 6), 8, (3, 2), padding=(3, 2), groups=1, seed=41),  # padding > kernel extent
    ConvCase((1, 1, 6, 5), 2, (2, 2), padding=(1, 1), seed=42),  # a single input channel
]


def derivation_grads(case: ConvCase, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """grad_input and grad_weight by the derivation-shaped functions."""
    _, cache = conv2d_forward(inputs["x"], inputs["weight"], inputs["bias"], **case.hyperparameters)
    grad_input = conv2d_input_grad_by_full_convolution(
        inputs["dout"], cache.weight, input_shape=cache.input_shape, padding=cache.padding,
        stride=cache.stride, dilation=cache.dilation, groups=cache.groups,
    )
    grad_weight = conv2d_weight_grad_by_cross_correlation(
        cache.x_padded, inputs["dout"], kernel_size=case.kernel_size, stride=cache.stride,
        dilation=cache.dilation, groups=cache.groups,
    )
    return grad_input, grad_weight


@pytest.mark.parametrize("case", CASES + EXTRA_CASES, ids=CASE_IDS + [c.id for c in EXTRA_CASES])
def test_fast_backward_equals_full_convolution_and_torch(case: ConvCase) -> None:
    inputs = make_inputs(case, np.float64)
    out, cache = conv2d_forward(inputs["x"], inputs["weight"], inputs["bias"], **case.hyperparameters)
    grad_input, grad_weight, _ = conv2d_backward(inputs["dout"], cache)
    full_input, full_weight = derivation_grads(case, inputs)
    expected_out, (expected_input, expected_weight, _) = torch_conv2d(
        case, inputs["x"], inputs["weight"], inputs["bias"], inputs["dout"]
    )
    assert_close(out, expected_out, rtol=1e-10, name="output", case=case)
    for name, fast, derived, expected in (
        ("grad_input", grad_input, full_input, expected_input),
        ("grad_weight", grad_weight, full_weight, expected_weight),
    ):
        assert_close(fast, derived, rtol=1e-10, name=f"{name} (fast vs derivation)", case=case)
        assert_close(derived, expected, rtol=1e-10, name=f"{name} (derivation vs torch)", case=case)
        assert fast.flags.c_contiguous, f"{name} is not contiguous [{case.id}]"


@pytest.mark.parametrize("case", [c for c in CASES if c.groups == 1][:8], ids=lambda c: c.id)
def test_float32_paths_stay_float32(case: ConvCase) -> None:
    inputs = make_inputs(case, np.float32)
    out, cache = conv2d_forward(inputs["x"], inputs["weight"], inputs["bias"], **case.hyperparameters)
    grads = conv2d_backward(inputs["dout"], cache)
    assert cache.columns is not None and cache.columns.dtype == np.float32
    assert out.dtype == np.float32
    assert all(g is None or g.dtype == np.float32 for g in grads)


def test_cache_without_columns_recomputes_them() -> None:
    """A Conv2dCache built field by field (as a user's wrapper may do) still works."""
    case = next(c for c in CASES if c.stride == (2, 2) and c.groups == 1)
    inputs = make_inputs(case, np.float64)
    _, cache = conv2d_forward(inputs["x"], inputs["weight"], inputs["bias"], **case.hyperparameters)
    bare = dataclasses.replace(cache, columns=None, out_size=(0, 0))
    for fast, slow in zip(conv2d_backward(inputs["dout"], cache), conv2d_backward(inputs["dout"], bare)):
        np.testing.assert_array_equal(fast, slow)


def test_planted_col2im_that_assigns_instead_of_adding_is_caught() -> None:
    """col2im must ADD overlapping window gradients; an assigning variant disagrees with torch."""
    case = ConvCase((1, 2, 7, 7), 3, (3, 3), stride=(2, 2), padding=(1, 1), seed=50)
    inputs = make_inputs(case, np.float64)
    _, cache = conv2d_forward(inputs["x"], inputs["weight"], inputs["bias"], **case.hyperparameters)
    grad_input = conv2d_backward(inputs["dout"], cache)[0]
    _, (expected, _, _) = torch_conv2d(case, inputs["x"], inputs["weight"], inputs["bias"], inputs["dout"])
    np.testing.assert_allclose(grad_input, expected, rtol=1e-10, atol=1e-12)

    def assigning_col2im(grad_columns, padded_shape, kernel_size, stride, dilation, out_size):
        channels, batch = padded_shape[1], padded_shape[0]
        (kh, kw), (sh, sw), (out_h, out_w) = kernel_size, stride, out_size
        per_offset = grad_columns.reshape(1, kh, kw, channels, batch, out_h, out_w)
        grad = np.zeros((channels, batch) + tuple(padded_shape[2:]))
        for i in range(kh):
            for j in range(kw):
                grad[:, :, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw] = (
                    per_offset[0, i, j]
                )
        return grad.transpose(1, 0, 2, 3)

    from refcheck.layers import conv

    original = conv._col2im
    conv._col2im = assigning_col2im
    try:
        wrong = conv2d_backward(inputs["dout"], cache)[0]
    finally:
        conv._col2im = original
    assert conv._col2im is _col2im
    assert not np.allclose(wrong, expected, rtol=1e-10, atol=1e-12)


def test_first_max_keeps_the_first_of_tied_maxima() -> None:
    rng = np.random.default_rng(0)
    windows = rng.integers(-2, 3, size=(5, 9, 40)).astype(np.float64)
    windows[0, :, 0] = -np.inf
    best, index = first_max(windows)
    np.testing.assert_array_equal(best, windows.max(axis=1))
    np.testing.assert_array_equal(index, windows.argmax(axis=1))  # numpy's argmax is first-wins
    assert index.dtype == np.int64


def _tie_input(shape: tuple[int, ...], seed: int, dtype: type = np.float64) -> np.ndarray:
    """Few distinct values (many ties), some -inf, some whole -inf planes."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 2, size=shape).astype(dtype)
    x[rng.random(shape) < 0.15] = -np.inf
    x[0, 0] = -np.inf
    return x


MAX_GEOMETRIES = [  # kernel, stride, padding, dilation, ceil_mode
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 2), (2, 3), (1, 1), (1, 1), True),
    ((3, 3), (1, 2), (1, 0), (2, 1), True),
    ((2, 3), (3, 1), (1, 1), (2, 2), False),
    ((4, 4), (4, 4), (2, 2), (1, 1), True),
]


@pytest.mark.parametrize("geometry", MAX_GEOMETRIES, ids=str)
def test_max_pool_window_copy_matches_scan_and_torch(geometry) -> None:
    kernel, stride, padding, dilation, ceil_mode = geometry
    params = {"kernel_size": kernel, "stride": stride, "padding": padding, "dilation": dilation,
              "ceil_mode": ceil_mode}
    x = _tie_input((2, 3, 9, 10), seed=hash(geometry) % 1000)
    out, cache = max_pool2d_forward(x, **params)
    rows, cols = _axes(x, kernel, stride, padding, dilation, ceil_mode)
    scan_out, scan_offset = _max_pool_scan(x, rows, cols)
    np.testing.assert_array_equal(out, scan_out)
    np.testing.assert_array_equal(cache["best_offset"], scan_offset)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx = max_pool2d_backward(dout, cache)
    tx = torch.tensor(x, requires_grad=True)
    expected = F.max_pool2d(tx, kernel, stride, padding, dilation, ceil_mode)
    expected.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, expected.detach().numpy())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("output_size", [(3, 4), (4, 5), (7, 7), (12, 3)], ids=str)
def test_adaptive_max_window_copy_matches_scan_and_torch(output_size) -> None:
    x = _tie_input((2, 3, 9, 10), seed=sum(output_size))
    out, cache = adaptive_max_pool2d_forward(x, output_size=output_size)
    windows = adaptive_windows(9, output_size[0]) + adaptive_windows(10, output_size[1])
    scan_out, scan_flat = _adaptive_max_scan(x, *windows)
    np.testing.assert_array_equal(out, scan_out)
    np.testing.assert_array_equal(cache["best_flat"], scan_flat)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    dx = adaptive_max_pool2d_backward(dout, cache)
    tx = torch.tensor(x, requires_grad=True)
    expected = F.adaptive_max_pool2d(tx, output_size)
    expected.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, expected.detach().numpy())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel", [((2, 3, 8, 8), (2, 2)), ((2, 3, 9, 7), (2, 3)), ((1, 2, 6, 6), (3, 3))],
                         ids=str)
def test_avg_pool_tiles_reshape_and_sum_match_torch(dtype, shape, kernel) -> None:
    """stride == kernel, no padding (leftover rows/columns when the kernel does not divide)."""
    params = {"kernel_size": kernel, "stride": kernel, "padding": (0, 0), "ceil_mode": False,
              "count_include_pad": True, "divisor_override": None}
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = avg_pool2d_forward(x, **params)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = avg_pool2d_backward(dout, cache)
    assert out.dtype == dtype and dx.dtype == dtype
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    expected = F.avg_pool2d(tx, kernel, kernel)
    expected.backward(torch.tensor(dout, dtype=torch.float64))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("shape, output_size", [((2, 3, 9, 10), (4, 3)), ((2, 3, 9, 10), (1, 1)),
                                                ((3, 5, 7), (1, 1))], ids=str)
def test_adaptive_avg_matrix_and_global_forms_match_torch(shape, output_size) -> None:
    """Global (1x1) pooling takes one sum per plane, other sizes the averaging matrices."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    out, cache = adaptive_avg_pool2d_forward(x, output_size=output_size)
    dout = rng.standard_normal(out.shape)
    dx = adaptive_avg_pool2d_backward(dout, cache)
    tx = torch.tensor(x, requires_grad=True)
    expected = F.adaptive_avg_pool2d(tx, output_size)
    expected.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_benchmark_runs_and_writes_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("threadpoolctl")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import layers_vs_torch
    finally:
        sys.path.pop(0)
    out = tmp_path / "bench.json"
    monkeypatch.setattr(sys, "argv", ["layers_vs_torch", "--quick", "--rounds", "1", "--threads", "1",
                                      "--layers", "relu,max_pool2d", "--out", str(out)])
    layers_vs_torch.main()
    result = json.loads(out.read_text())
    assert {row["family"] for row in result["rows"]} == {"relu", "max_pool2d"}
    assert all(row["ratio"] > 0 for row in result["rows"])
    assert "OPENBLAS_CORETYPE" in result["env"]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 5), (4, 17, 33)])  # below and above the size where bit masks take over
def test_bitmask_choice_is_np_where_bit_for_bit(dtype, shape):
    from refcheck.layers.activations import _choose

    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    a.flat[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0]
    b.flat[:6] = [-0.0, np.nan, 2.0, np.inf, -np.inf, np.nan]
    condition = rng.random(shape) < 0.5
    got, expected = _choose(condition, a, b), np.where(condition, a, b)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_sigmoid_leaky_relu_equal_their_np_where_forms(dtype):
    from refcheck import layers

    rng = np.random.default_rng(4)
    x, dout = (rng.standard_normal((8, 16, 12, 12)).astype(dtype) for _ in range(2))
    x.flat[:5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    dout.flat[:5] = [np.inf, np.nan, -0.0, -1.0, np.inf]
    zero, one, slope = (np.asarray(v, dtype=dtype) for v in (0.0, 1.0, 0.01))
    out, cache = layers.relu_forward(x)
    assert np.array_equal(layers.relu_backward(dout, cache).view(np.uint8),
                          np.where(out <= 0, zero, dout).view(np.uint8))
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
        large, small = one / (one + e), e / (one + e)
        sig, (_, complement) = layers.sigmoid_forward(x)
        leaky, leaky_cache = layers.leaky_relu_forward(x, negative_slope=0.01)
        leaky_grad = layers.leaky_relu_backward(dout, leaky_cache)
        assert np.array_equal(sig.view(np.uint8), np.where(x >= 0, large, small).view(np.uint8))
        assert np.array_equal(complement.view(np.uint8), np.where(x >= 0, small, large).view(np.uint8))
        assert np.array_equal(leaky.view(np.uint8), np.where(x > 0, x, x * slope).view(np.uint8))
        assert np.array_equal(leaky_grad.view(np.uint8), np.where(x > 0, dout, dout * slope).view(np.uint8))
