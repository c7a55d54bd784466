"""Tests of the convolution vs cross-correlation explorer (refcheck.convention).

Oracles: torch.autograd in float64 (computed here, not taken from the explorer), hand-worked entries
of the 3x3/2x2 example, and small numpy conv2d implementations written below in the
gather/scatter style (independent of refcheck.convention.formulas).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from refcheck.convention import build_convention, classify_conv2d, key_table, write_convention_report
from refcheck.convention.classify import (
    FORWARD_CONVOLUTION,
    FORWARD_CORRELATION,
    INPUT_GRAD_FULL_CONVOLUTION,
    INPUT_GRAD_NO_ROTATION,
    NEITHER,
    NOT_RUN,
    WEIGHT_GRAD_CORRELATION,
    WEIGHT_GRAD_FLIPPED,
)
from refcheck.convention.formulas import cross_correlate2d, grad_input_full_convolution, grad_weight_correlation
from refcheck.convention.identities import IdentityCase, identity_rows

# ------------------------------------------------------------------ implementations under classification


def correlation_forward(x, weight, bias, *, stride, padding, dilation, groups):
    """A correct conv2d (torch's cross-correlation), gathering one kernel tap at a time."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    batch, channels, height, width = padded.shape
    filters, group_channels, kh, kw = weight.shape
    out_h = (height - dh * (kh - 1) - 1) // sh + 1
    out_w = (width - dw * (kw - 1) - 1) // sw + 1
    grouped_x = padded.reshape(batch, groups, group_channels, height, width)
    grouped_w = weight.reshape(groups, filters // groups, group_channels, kh, kw)
    out = np.zeros((batch, groups, filters // groups, out_h, out_w))
    for p in range(kh):
        for q in range(kw):
            rows = slice(p * dh, p * dh + sh * (out_h - 1) + 1, sh)
            cols = slice(q * dw, q * dw + sw * (out_w - 1) + 1, sw)
            out += np.einsum("ngchw,gfc->ngfhw", grouped_x[..., rows, cols], grouped_w[..., p, q])
    out = out.reshape(batch, filters, out_h, out_w)
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out, (x, weight, bias is not None, stride, padding, dilation, groups)


def correlation_backward(dout, cache):
    """Exact gradients of correlation_forward, scattering one kernel tap at a time."""
    x, weight, has_bias, (sh, sw), (ph, pw), (dh, dw), groups = cache
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    batch, channels, height, width = padded.shape
    filters, group_channels, kh, kw = weight.shape
    out_h, out_w = dout.shape[-2:]
    grouped_x = padded.reshape(batch, groups, group_channels, height, width)
    grouped_w = weight.reshape(groups, filters // groups, group_channels, kh, kw)
    grouped_dout = dout.reshape(batch, groups, filters // groups, out_h, out_w)
    grad_padded = np.zeros_like(grouped_x)
    grad_weight = np.zeros_like(grouped_w)
    for p in range(kh):
        for q in range(kw):
            rows = slice(p * dh, p * dh + sh * (out_h - 1) + 1, sh)
            cols = slice(q * dw, q * dw + sw * (out_w - 1) + 1, sw)
            grad_padded[..., rows, cols] += np.einsum("ngfhw,gfc->ngchw", grouped_dout, grouped_w[..., p, q])
            grad_weight[..., p, q] = np.einsum("ngfhw,ngchw->gfc", grouped_dout, grouped_x[..., rows, cols])
    grad_x = grad_padded.reshape(padded.shape)[..., ph : ph + x.shape[2], pw : pw + x.shape[3]]
    grad_bias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return grad_x, grad_weight.reshape(weight.shape), grad_bias


def flipped_forward(x, weight, bias):
    """A true convolution (kernel rotated by 180°), default hyperparameters only."""
    defaults = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}
    return correlation_forward(x, weight[..., ::-1, ::-1], bias, **defaults)


def flipped_backward(dout, cache):
    """Exact gradients of flipped_forward: the weight gradient comes back rotated."""
    grad_x, grad_rotated, grad_bias = correlation_backward(dout, cache)
    return grad_x, grad_rotated[..., ::-1, ::-1], grad_bias


def unrotated_backward(dout, cache):
    """The classic bug: dX scatters dY through rot180 W (a correlation with W, no rotation)."""
    x, weight, *rest = cache
    grad_x, _, _ = correlation_backward(dout, (x, weight[..., ::-1, ::-1], *rest))
    _, grad_weight, grad_bias = correlation_backward(dout, cache)
    return grad_x, grad_weight, grad_bias


def garbage_forward(x, weight, bias, **hyperparameters):
    out, cache = correlation_forward(x, weight, bias, **hyperparameters)
    return out**2 - 1.0, cache


def garbage_backward(dout, cache):
    x, weight = cache[:2]
    return np.cos(x), np.ones_like(weight), None


def raising_forward(x, weight, bias, *, stride, padding, dilation, groups):
    raise ValueError("not implemented yet")


def raising_backward(dout, cache):
    raise RuntimeError("backward exploded")


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def convention():
    return build_convention()


def _autograd_conv2d(x, weight, grad_output, **hyper):
    x_t = torch.tensor(x, requires_grad=True)
    w_t = torch.tensor(weight, requires_grad=True)
    out = F.conv2d(x_t, w_t, None, **hyper)
    out.backward(torch.tensor(grad_output))
    return out.detach().numpy(), x_t.grad.numpy(), w_t.grad.numpy()


# ------------------------------------------------------------------------------------------ tests


CASES = {
    "default": IdentityCase(),
    "no-remainder": IdentityCase(input_hw=(9, 11), seed=3),
    "stride-1": IdentityCase(channels=3, filters=3, input_hw=(6, 5), kernel_hw=(2, 3), stride=(1, 1),
                             padding=(0, 1), dilation=(1, 2), groups=3, seed=7),
}


@pytest.mark.parametrize("name", CASES)
def test_identities_hold_and_wrong_variants_fail(name):
    rows = identity_rows(CASES[name])
    correct = [row for row in rows if not row.identity.startswith("wrong:")]
    wrong = [row for row in rows if row.identity.startswith("wrong:")]
    assert len(correct) == 10 and len(wrong) == 7
    for row in correct:
        assert row.holds, f"{row.identity}: max abs error {row.max_abs_error:g}"
        assert row.max_abs_error < 1e-12
    case = CASES[name]
    for row in wrong:
        if (case.stride == (1, 1) and "no dilation" in row.identity) or (
                case.output_padding == (0, 0) and "without output_padding" in row.identity):
            # with stride 1 there is nothing to dilate; without a row after the last window nothing to restore
            assert row.holds
        else:
            assert not row.holds and row.max_abs_error > 0.1, row.identity


def test_formulas_match_autograd_computed_here():
    rng = np.random.default_rng(11)
    x, weight = rng.standard_normal((2, 4, 7, 8)), rng.standard_normal((6, 2, 2, 3))
    hyper = {"stride": (2, 3), "padding": (2, 1), "dilation": (1, 2), "groups": 2}
    out_hw = ((7 + 4 - 1 - 1) // 2 + 1, (8 + 2 - 4 - 1) // 3 + 1)
    grad_output = rng.standard_normal((2, 6, *out_hw))
    out, grad_x, grad_w = _autograd_conv2d(x, weight, grad_output, **hyper)
    np.testing.assert_allclose(cross_correlate2d(x, weight, **hyper), out, rtol=0, atol=1e-12)
    grad_x_formula = grad_input_full_convolution(grad_output, weight, (7, 8), **hyper)
    np.testing.assert_allclose(grad_x_formula, grad_x, rtol=0, atol=1e-12)
    grad_w_formula = grad_weight_correlation(x, grad_output, (2, 3), **hyper)
    np.testing.assert_allclose(grad_w_formula, grad_w, rtol=0, atol=1e-12)


def test_key_table_columns_and_values(convention):
    table = key_table(convention)
    assert list(table.columns) == ["identity", "formula", "max_abs_error", "holds"]
    assert table["holds"].dtype == bool and table["max_abs_error"].dtype == np.float64
    wrong = table["identity"].str.startswith("wrong:")
    assert table.loc[~wrong, "holds"].all() and not table.loc[wrong, "holds"].any()
    assert key_table().equals(table)  # same default case, recomputed


def test_worked_example_forward(convention):
    example = convention.worked_example
    x, kernel = example.x, example.kernel
    windows = [[x[i : i + 2, j : j + 2] for j in range(2)] for i in range(2)]
    expected_corr = np.array([[np.sum(window * kernel) for window in row] for row in windows])
    expected_conv = np.array([[np.sum(window * kernel[::-1, ::-1]) for window in row] for row in windows])
    np.testing.assert_array_equal(example.cross_correlation, expected_corr)
    np.testing.assert_array_equal(example.true_convolution, expected_conv)
    np.testing.assert_array_equal(example.torch_conv2d, expected_corr)
    assert example.torch_is_correlation and not example.torch_is_convolution


def test_worked_example_entries_equal_autograd(convention):
    example = convention.worked_example
    four_d = (None, None)
    _, grad_x, grad_w = _autograd_conv2d(example.x[four_d], example.kernel[four_d], example.grad_output[four_d])
    assert len(example.grad_input_entries) == 9 and len(example.grad_kernel_entries) == 4
    for entry in example.grad_input_entries:
        row, col = int(entry.name[2]) - 1, int(entry.name[3]) - 1
        assert entry.value == grad_x[0, 0, row, col] == entry.autograd, entry.equation
    for entry in example.grad_kernel_entries:
        row, col = int(entry.name[2]) - 1, int(entry.name[3]) - 1
        assert entry.value == grad_w[0, 0, row, col], entry.equation


def test_worked_example_symbolic_entries(convention):
    example = convention.worked_example
    assert example.entry("dX11").equation == "dX11 = F11 dO11"
    assert example.entry("dX12").equation == "dX12 = F12 dO11 + F11 dO12"
    assert example.entry("dX22").equation == "dX22 = F22 dO11 + F21 dO12 + F12 dO21 + F11 dO22"
    assert example.entry("dX33").equation == "dX33 = F22 dO22"
    assert example.entry("dF11").equation == "dF11 = X11 dO11 + X12 dO12 + X21 dO21 + X22 dO22"
    kernel, grad_output = example.kernel, example.grad_output
    assert example.entry("dX12").value == kernel[0, 1] * grad_output[0, 0] + kernel[0, 0] * grad_output[0, 1]


def test_pooling_rules_match_torch(convention):
    assert len(convention.pooling) == 7
    for demo in convention.pooling:
        assert demo.holds, f"{demo.rule} / {demo.setting}: {demo.max_abs_error:g}"
    ties = convention.pooling[0]  # window (1,1) holds 3 at X11 and X21: only X11 receives dY11
    assert ties.x[0, 0] == ties.x[1, 0] == ties.x[:2, :2].max()
    assert ties.grad_input[0, 0] == ties.grad_output[0, 0] and ties.grad_input[1, 0] == 0
    assert any("goes to X11 only" in note for note in ties.notes)
    include, exclude = convention.pooling[2], convention.pooling[3]
    assert np.all(include.details["divisor"] == 9) and exclude.details["divisor"][0, 0] == 4
    ceil = convention.pooling[4]
    assert ceil.details["divisor"][-1, -1] == 4 and ceil.details["divisor"][0, 0] == 9


def test_classifier_recognises_correct_correlation():
    report = classify_conv2d(correlation_forward, correlation_backward)
    assert report.forward == FORWARD_CORRELATION
    assert report.input_gradient == INPUT_GRAD_FULL_CONVOLUTION
    assert report.weight_gradient == WEIGHT_GRAD_CORRELATION
    assert report.consistent and report.matches_torch and not report.errors
    assert report.accepted_hyperparameters == ("stride", "padding", "dilation", "groups")
    assert len(report.cases) == 3 and "stride (2, 1)" in report.cases[2]
    assert report.forward_errors[FORWARD_CORRELATION] < 1e-12 < report.forward_errors[FORWARD_CONVOLUTION]


def test_classifier_recognises_flipped_kernel():
    report = classify_conv2d(flipped_forward, flipped_backward)
    assert report.forward == FORWARD_CONVOLUTION
    assert report.input_gradient == INPUT_GRAD_NO_ROTATION
    assert report.weight_gradient == WEIGHT_GRAD_FLIPPED
    assert report.consistent and not report.matches_torch
    assert report.accepted_hyperparameters == () and len(report.cases) == 2
    assert any("tested only at torch's defaults" in note for note in report.notes)


def test_classifier_flags_missing_rotation():
    report = classify_conv2d(correlation_forward, unrotated_backward)
    assert report.forward == FORWARD_CORRELATION and report.input_gradient == INPUT_GRAD_NO_ROTATION
    assert report.weight_gradient == WEIGHT_GRAD_CORRELATION
    assert report.consistent is False and "without rot180" in report.verdict


def test_classifier_recognises_garbage():
    report = classify_conv2d(garbage_forward, garbage_backward)
    assert (report.forward, report.input_gradient, report.weight_gradient) == (NEITHER, NEITHER, NEITHER)
    assert report.consistent is False and not report.matches_torch
    assert report.bias_gradient_error == float("inf")


def test_classifier_reports_exceptions_instead_of_raising():
    report = classify_conv2d(raising_forward, correlation_backward)
    assert report.forward == NOT_RUN and report.consistent is None
    assert len(report.errors) == 3 and all("ValueError: not implemented yet" in e for e in report.errors)
    report = classify_conv2d(correlation_forward, raising_backward)
    assert report.forward == FORWARD_CORRELATION and report.input_gradient == NOT_RUN
    assert all("RuntimeError: backward exploded" in e for e in report.errors)


def test_report_files(tmp_path, convention):
    impl_report = classify_conv2d(flipped_forward, flipped_backward)
    paths = write_convention_report(tmp_path / "out", impl_report, convention=convention)
    names = sorted(path.name for path in paths)
    assert names == ["convention.html", "convention.md", "convention_example.png", "convention_input_gradient.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names  # no temporary files left
    markdown = (tmp_path / "out" / "convention.md").read_text(encoding="utf-8")
    page = (tmp_path / "out" / "convention.html").read_text(encoding="utf-8")
    for identity in key_table(convention)["identity"]:
        assert identity in markdown
        assert identity.replace(">", "&gt;") in page
    assert "✓" in markdown and "✗" in markdown and "✓" in page and "✗" in page
    assert "dX22 = F22 dO11 + F21 dO12 + F12 dO21 + F11 dO22" in markdown
    assert FORWARD_CONVOLUTION.replace("'", "&#x27;") in page and FORWARD_CONVOLUTION in markdown
    assert page.count("data:image/png;base64,") == 2 and "<table>" in page
    for path in paths:
        if path.suffix == ".png":
            assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classifier_accepted_override_limits_the_strided_case():
    forward = functools.partial(correlation_forward, dilation=(1, 1), groups=1)
    report = classify_conv2d(forward, correlation_backward, accepted={"stride", "padding"}, origin="mine")
    assert report.accepted_hyperparameters == ("stride", "padding") and report.origin == "mine"
    assert "stride (2, 1), padding (1, 2)" in report.cases[2] and "dilation" not in report.cases[2]
    assert report.matches_torch and not report.errors
