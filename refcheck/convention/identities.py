"""The identity table: convolution/correlation identities and their plausible wrong variants,
measured in float64 on one random case against torch.autograd.

Every row compares two independently computed arrays (torch on one side, a numpy formula from
``formulas`` on the other, or two different numpy definitions) and records the largest absolute
difference. A correct identity differs only by rounding (~1e-15); a wrong variant by O(1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..layers import conv_transpose2d_forward
from ._threads import single_threaded
from .formulas import (
    Pair,
    conv_output_size,
    cross_correlate2d,
    grad_input_full_convolution,
    grad_input_rotated_correlation,
    grad_weight_correlation,
    rot180,
    true_convolve2d,
)

__all__ = ["HOLDS_TOLERANCE", "IdentityCase", "IdentityRow", "identity_rows", "max_abs_error"]

#: An identity "holds" when float64 results differ by at most this much (rounding is ~1e-14).
HOLDS_TOLERANCE = 1e-9


@dataclass(frozen=True)
class IdentityCase:
    """A conv2d setting with every hyperparameter away from its default.

    The default input height 10 leaves one padded row that no window reaches
    ((10 + 2 - 2·2 - 1) mod 2 = 1), so conv_transpose2d needs output_padding 1 there.
    """

    batch: int = 2
    channels: int = 4
    filters: int = 6
    input_hw: Pair = (10, 11)
    kernel_hw: Pair = (3, 2)
    stride: Pair = (2, 1)
    padding: Pair = (1, 2)
    dilation: Pair = (2, 1)
    groups: int = 2
    seed: int = 0

    @property
    def hyperparameters(self) -> dict[str, Pair | int]:
        """The keyword arguments of torch.nn.functional.conv2d for this case."""
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}

    @property
    def output_hw(self) -> Pair:
        """(Ho, Wo) = floor((H + 2p - d(k - 1) - 1) / s) + 1 per axis."""
        return tuple(  # type: ignore[return-value]
            conv_output_size(self.input_hw[a], self.kernel_hw[a], self.stride[a], self.padding[a], self.dilation[a])
            for a in range(2)
        )

    @property
    def output_padding(self) -> Pair:
        """Rows/columns of the padded input after the last window: conv_transpose2d's output_padding."""
        return tuple(  # type: ignore[return-value]
            (self.input_hw[a] + 2 * self.padding[a] - self.dilation[a] * (self.kernel_hw[a] - 1) - 1) % self.stride[a]
            for a in range(2)
        )

    def describe(self) -> str:
        """One line naming the shapes and hyperparameters."""
        n, c, f, (h, w), (kh, kw) = self.batch, self.channels, self.filters, self.input_hw, self.kernel_hw
        return (
            f"x ({n}, {c}, {h}, {w}), W ({f}, {c // self.groups}, {kh}, {kw}), b ({f},), "
            f"stride {self.stride}, padding {self.padding}, dilation {self.dilation}, groups {self.groups}, "
            f"dY random ({n}, {f}, {self.output_hw[0]}, {self.output_hw[1]}), float64, seed {self.seed}"
        )


@dataclass(frozen=True)
class IdentityRow:
    """One measured identity: what is compared, how far apart the two sides are."""

    identity: str
    formula: str
    max_abs_error: float
    holds: bool
    expected_to_hold: bool
    note: str = field(default="")

    @property
    def as_expected(self) -> bool:
        """True when a correct identity holds or a wrong variant fails."""
        return self.holds == self.expected_to_hold


def max_abs_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference; inf when the shapes differ (nothing meaningful to compare)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return float("inf")
    if actual.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected)))


def _row(identity: str, formula: str, actual: np.ndarray, expected: np.ndarray, *, expected_to_hold: bool,
         note: str = "") -> IdentityRow:
    error = max_abs_error(actual, expected)
    return IdentityRow(identity, formula, error, bool(error <= HOLDS_TOLERANCE), expected_to_hold, note)


def identity_rows(case: IdentityCase | None = None) -> list[IdentityRow]:
    """Measure every identity and wrong variant on ``case`` (default: ``IdentityCase()``).

    Ground truth is torch.autograd in float64 with a random (not all-ones) upstream gradient dY:
    all ones would hide a missing kernel rotation everywhere but the border.

    Returns
    -------
    list of IdentityRow, correct identities first, then the wrong variants.
    """
    case = case or IdentityCase()
    rng = np.random.default_rng(case.seed)
    kh, kw = case.kernel_hw
    x = rng.standard_normal((case.batch, case.channels, *case.input_hw))
    weight = rng.standard_normal((case.filters, case.channels // case.groups, kh, kw))
    bias = rng.standard_normal(case.filters)
    grad_output = rng.standard_normal((case.batch, case.filters, *case.output_hw))
    hyper = case.hyperparameters

    x_t = torch.tensor(x, requires_grad=True)
    weight_t = torch.tensor(weight, requires_grad=True)
    bias_t = torch.tensor(bias, requires_grad=True)
    grad_output_t = torch.tensor(grad_output)
    with single_threaded():
        out_t = F.conv2d(x_t, weight_t, bias_t, **hyper)
        out_t.backward(grad_output_t)
    torch_out = out_t.detach().numpy()
    grad_x, grad_w, grad_b = x_t.grad.numpy(), weight_t.grad.numpy(), bias_t.grad.numpy()
    with torch.no_grad(), single_threaded():
        torch_flipped = F.conv2d(x_t, torch.flip(weight_t, dims=(2, 3)), bias_t, **hyper).numpy()
        transposed = F.conv_transpose2d(
            grad_output_t, weight_t, None, stride=case.stride, padding=case.padding,
            output_padding=case.output_padding, groups=case.groups, dilation=case.dilation,
        ).numpy()
        torch_grad_input = torch.nn.grad.conv2d_input(x_t.shape, weight_t, grad_output_t, **hyper).numpy()
        torch_grad_weight = torch.nn.grad.conv2d_weight(x_t, weight_t.shape, grad_output_t, **hyper).numpy()

    transpose_hyper = {"stride": case.stride, "padding": case.padding, "groups": case.groups,
                       "dilation": case.dilation}
    numpy_transposed, _ = conv_transpose2d_forward(grad_output, weight, None, output_padding=case.output_padding,
                                                   **transpose_hyper)
    numpy_transposed_rotated, _ = conv_transpose2d_forward(grad_output, rot180(weight), None,
                                                           output_padding=case.output_padding, **transpose_hyper)
    numpy_transposed_short, _ = conv_transpose2d_forward(grad_output, weight, None, output_padding=(0, 0),
                                                         **transpose_hyper)
    bias_map = bias[None, :, None, None]
    correlation = cross_correlate2d(x, weight, **hyper) + bias_map
    convolution = true_convolve2d(x, weight, **hyper) + bias_map
    dw_correlation = grad_weight_correlation(x, grad_output, case.kernel_hw, **hyper)
    dw_of_flipped_dy = grad_weight_correlation(x, rot180(grad_output), case.kernel_hw, **hyper)
    dx_full = grad_input_full_convolution(grad_output, weight, case.input_hw, **hyper)
    dx_rotated = grad_input_rotated_correlation(grad_output, weight, case.input_hw, **hyper)
    dx_unrotated = grad_input_rotated_correlation(grad_output, weight, case.input_hw, rotate=False, **hyper)
    dx_undilated = grad_input_full_convolution(
        grad_output, weight, case.input_hw, dilate_grad_output=False, **hyper
    )
    padded_hw = tuple(case.input_hw[a] + 2 * case.padding[a] for a in range(2))
    undilated_hw = tuple(case.output_hw[a] + case.dilation[a] * (case.kernel_hw[a] - 1) for a in range(2))
    mismatch_note = (
        f"dY ∗_full W is {undilated_hw[0]}×{undilated_hw[1]} but the padded input is "
        f"{padded_hw[0]}×{padded_hw[1]}: cropped / zero-padded at the bottom-right to fit, then the padding dropped"
        if undilated_hw != padded_hw else ""
    )

    return [
        _row("conv2d is a cross-correlation",
             "conv2d(x, W, b) = x ⋆ W + b:  "
             "y[n,f,i,j] = b[f] + Σ_{c,p,q} x̃[n,c, i·sh+p·dh, j·sw+q·dw] · W[f,c,p,q]",
             torch_out, correlation, expected_to_hold=True),
        _row("convolution = correlation with the kernel rotated",
             "x ∗ W (Σ_u x̃[u] W[m−u], valid part, every stride) = conv2d(x, rot180 W)",
             convolution, torch_flipped, expected_to_hold=True),
        _row("dW is a cross-correlation of x with dY",
             "dW = x̃ ⋆ dY: batch summed, dY as the kernel, stride and dilation swapped, cropped to kh×kw",
             dw_correlation, grad_w, expected_to_hold=True),
        _row("dW = torch.nn.grad.conv2d_weight",
             "torch.nn.grad.conv2d_weight(x, W.shape, dY, stride, padding, dilation, groups) = autograd dW",
             torch_grad_weight, grad_w, expected_to_hold=True),
        _row("dX is a full convolution of the dilated dY with the kernel",
             "dX = crop_p( dil_s(dY) ∗_full W ):  (s − 1) zeros between dY elements, W's in/out channels swapped",
             dx_full, grad_x, expected_to_hold=True),
        _row("dX is a correlation of the padded dilated dY with rot180 W",
             "dX = crop_p( pad_{d(k−1)}(dil_s(dY)) ⋆ rot180 W )",
             dx_rotated, grad_x, expected_to_hold=True),
        _row("dX = conv_transpose2d(dY, W)",
             f"conv_transpose2d(dY, W, stride, padding, output_padding={case.output_padding}, groups, dilation)",
             transposed, grad_x, expected_to_hold=True,
             note="output_padding = (H + 2p − d(k−1) − 1) mod s: the rows after the last window"),
        _row("dX = the numpy conv_transpose2d(dY, W) of refcheck.layers",
             f"refcheck.layers.conv_transpose2d_forward(dY, W, None, stride, padding, "
             f"output_padding={case.output_padding}, groups, dilation) = autograd dX (numpy, no torch)",
             numpy_transposed, grad_x, expected_to_hold=True,
             note="the same weight tensor: conv_transpose2d reads conv2d's (F, C/g) as (C_in, C_out/g)"),
        _row("dX = torch.nn.grad.conv2d_input",
             "torch.nn.grad.conv2d_input(x.shape, W, dY, stride, padding, dilation, groups) = autograd dX",
             torch_grad_input, grad_x, expected_to_hold=True),
        _row("db is the sum of dY over batch and space",
             "db[f] = Σ_{n,i,j} dY[n,f,i,j]",
             grad_output.sum(axis=(0, 2, 3)), grad_b, expected_to_hold=True),
        _row("wrong: conv2d is a true convolution",
             "conv2d(x, W, b) = x ∗ W + b  (the kernel flipped in the forward)",
             convolution, torch_out, expected_to_hold=False),
        _row("wrong: flip in the backward but not in the forward",
             "dW = rot180(x̃ ⋆ dY)  (the weight gradient of a flipped-kernel forward, used with torch's)",
             rot180(dw_correlation), grad_w, expected_to_hold=False),
        _row("wrong: dW as a convolution of x with dY",
             "dW = x̃ ∗ dY = x̃ ⋆ rot180(dY)  (dY flipped)",
             dw_of_flipped_dy, grad_w, expected_to_hold=False),
        _row("wrong: correlation where a convolution is needed",
             "dX = crop_p( pad_{d(k−1)}(dil_s(dY)) ⋆ W )  (no rot180)",
             dx_unrotated, grad_x, expected_to_hold=False),
        _row("wrong: conv_transpose2d with the kernel rotated",
             "conv_transpose2d(dY, rot180 W)  (the rotation already happens inside conv_transpose2d)",
             numpy_transposed_rotated, grad_x, expected_to_hold=False),
        _row("wrong: conv_transpose2d without output_padding",
             "conv_transpose2d(dY, W, output_padding=0)  (the rows after the last window are lost)",
             numpy_transposed_short, grad_x, expected_to_hold=case.output_padding == (0, 0),
             note="a shape mismatch shows as inf" if case.output_padding != (0, 0) else ""),
        _row("wrong: no dilation of dY for stride > 1",
             "dX = crop_p( dY ∗_full W )  (no zeros inserted between dY elements)",
             dx_undilated, grad_x, expected_to_hold=case.stride == (1, 1), note=mismatch_note),
    ]
