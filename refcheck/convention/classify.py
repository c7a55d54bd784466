"""Which convention does a user's conv2d follow? Run it on random float64 cases and compare its
forward, input gradient and weight gradient with each candidate formula.

The candidates come from ``formulas`` (each shown equal to torch.autograd in the identity table):

- forward: cross-correlation x ⋆ W (torch) or true convolution x ∗ W = x ⋆ rot180 W;
- input gradient: full convolution of the stride-dilated dY with W (the gradient of the
  correlation forward) or the correlation of the padded dY with W without rotation (the gradient
  of the flipped forward);
- weight gradient: x ⋆ dY (correlation forward) or rot180(x ⋆ dY) (flipped forward).

A candidate matches when every case agrees within ``CLASSIFY_RTOL · max(1, max |reference|)``:
loose enough for an implementation that rounds through float32, far below the O(1) gap between
formulas. Exceptions raised by the user's code are recorded in the report, never raised.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..adapters import accepted_keywords
from .formulas import (
    cross_correlate2d,
    grad_input_full_convolution,
    grad_input_rotated_correlation,
    grad_weight_correlation,
    rot180,
    true_convolve2d,
)

__all__ = [
    "CLASSIFY_RTOL",
    "FORWARD_CONVOLUTION",
    "FORWARD_CORRELATION",
    "INPUT_GRAD_FULL_CONVOLUTION",
    "INPUT_GRAD_NO_ROTATION",
    "NEITHER",
    "WEIGHT_GRAD_CORRELATION",
    "WEIGHT_GRAD_FLIPPED",
    "ConventionReport",
    "accepted_hyperparameters",
    "classify_conv2d",
]

CLASSIFY_RTOL = 1e-5
HYPERPARAMETERS = ("stride", "padding", "dilation", "groups")
FORWARD_CORRELATION = "cross-correlation (torch's convention)"
FORWARD_CONVOLUTION = "true convolution (kernel flipped)"
INPUT_GRAD_FULL_CONVOLUTION = "full convolution with the kernel"
INPUT_GRAD_NO_ROTATION = "correlation without rotation"
WEIGHT_GRAD_CORRELATION = "cross-correlation of x with dY"
WEIGHT_GRAD_FLIPPED = "flipped (rot180 of x ⋆ dY)"
BIAS_GRAD_SUM = "sum of dY over batch and space"
NEITHER = "neither"
NOT_RUN = "not run (error)"


@dataclass(frozen=True)
class ConventionReport:
    """What a conv2d implementation computes, with the error against every candidate.

    The ``*_errors`` dicts map each candidate label to the largest absolute error over the cases
    (inf: wrong shape, non-finite values, or the tensor was not returned).
    """

    forward: str
    input_gradient: str
    weight_gradient: str
    bias_gradient: str
    forward_errors: dict[str, float]
    input_gradient_errors: dict[str, float]
    weight_gradient_errors: dict[str, float]
    bias_gradient_error: float
    consistent: bool | None
    matches_torch: bool
    verdict: str
    cases: tuple[str, ...]
    accepted_hyperparameters: tuple[str, ...]
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    origin: str = ""

    def table(self) -> pd.DataFrame:
        """One row per (quantity, candidate): columns quantity, candidate, max_abs_error, matches."""
        rows = []
        for quantity, label, errors in (
            ("forward", self.forward, self.forward_errors),
            ("input gradient", self.input_gradient, self.input_gradient_errors),
            ("weight gradient", self.weight_gradient, self.weight_gradient_errors),
            ("bias gradient", self.bias_gradient, {BIAS_GRAD_SUM: self.bias_gradient_error}),
        ):
            for candidate, error in errors.items():
                rows.append({"quantity": quantity, "candidate": candidate, "max_abs_error": error,
                             "matches": candidate == label})
        return pd.DataFrame(rows, columns=["quantity", "candidate", "max_abs_error", "matches"])

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """A few lines for a console."""
        lines = [
            f"implementation: {self.origin or '(unnamed)'}",
            f"forward: {self.forward}",
            f"input gradient: {self.input_gradient}",
            f"weight gradient: {self.weight_gradient}",
            f"bias gradient: {self.bias_gradient}",
            f"verdict: {self.verdict}",
        ]
        lines += [f"error: {message}" for message in self.errors]
        lines += [f"note: {message}" for message in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Case:
    label: str
    x_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, int, int, int]
    hyper: dict[str, Any] = field(default_factory=dict)


def accepted_hyperparameters(forward: Callable[..., Any]) -> tuple[str, ...]:
    """The conv2d hyperparameter keywords ``forward`` accepts (all of them for ``**kwargs`` or an
    unreadable signature)."""
    keywords = accepted_keywords(forward)
    if keywords is None:
        return HYPERPARAMETERS
    return tuple(name for name in HYPERPARAMETERS if name in keywords)


def _cases(accepted: tuple[str, ...],
           constraint: Callable[[dict[str, Any]], str | None] | None = None) -> list[_Case]:
    """Two default-hyperparameter cases, plus a strided/padded one using what forward accepts.

    The strided case is non-square when the implementation allows it, else square (CS231n style
    takes one stride and one pad for both axes); none if ``constraint`` rejects both.
    """
    defaults = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}
    plain = {name: defaults[name] for name in accepted}
    cases = [_Case("plain 6×7, kernel 3×2", (2, 3, 6, 7), (4, 3, 3, 2), plain),
             _Case("plain 5×5, kernel 2×3", (1, 2, 5, 5), (3, 2, 2, 3), plain)]
    if accepted:
        for wanted in ({"stride": (2, 1), "padding": (1, 2), "dilation": (2, 1), "groups": 2},
                       {"stride": (2, 2), "padding": (1, 1), "dilation": (2, 2), "groups": 2}):
            hyper = {name: wanted[name] for name in accepted}
            if constraint is not None and constraint({**defaults, **hyper}):
                continue
            groups = hyper.get("groups", 1)
            settings = ", ".join(f"{name} {value}" for name, value in hyper.items())
            cases.append(_Case(f"10×9, kernel 3×2, {settings}", (2, 4, 10, 9), (4, 4 // groups, 3, 2), hyper))
            break
    return cases


def _describe_exception(stage: str, case: _Case, exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"[{case.label}] {stage} raised {type(exc).__name__}: {exc}{where}"


def _fit(actual: Any, expected: np.ndarray) -> tuple[float, bool]:
    """(max abs error, within tolerance); inf for a missing, misshapen or non-finite result."""
    if actual is None:
        return float("inf"), False
    try:
        actual = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError):
        return float("inf"), False
    if actual.shape != expected.shape:
        return float("inf"), False
    error = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    if not np.isfinite(error):
        return float("inf"), False
    return error, error <= CLASSIFY_RTOL * max(1.0, float(np.max(np.abs(expected), initial=0.0)))


class _Tally:
    """Worst error and all-cases agreement for each candidate of one quantity."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.errors = dict.fromkeys(labels, 0.0)
        self.matches = dict.fromkeys(labels, True)

    def add(self, label: str, actual: Any, expected: np.ndarray) -> None:
        error, ok = _fit(actual, expected)
        self.errors[label] = max(self.errors[label], error)
        self.matches[label] = self.matches[label] and ok

    def reported(self, ran: bool) -> dict[str, float]:
        """The worst errors, or nan for every candidate when no case got this far."""
        return dict(self.errors) if ran else dict.fromkeys(self.errors, float("nan"))

    def verdict(self, ran: bool) -> str:
        if not ran:
            return NOT_RUN
        return next((label for label, ok in self.matches.items() if ok), NEITHER)


def _shape_notes(case: _Case, named: dict[str, Any], expected: dict[str, tuple[int, ...]]) -> list[str]:
    notes = []
    for name, value in named.items():
        shape = getattr(value, "shape", None)
        if value is not None and shape is not None and tuple(shape) != expected[name]:
            notes.append(f"[{case.label}] {name} has shape {tuple(shape)}, expected {expected[name]}")
        dtype = getattr(value, "dtype", None)
        if dtype is not None and dtype != np.float64:
            notes.append(f"[{case.label}] {name} is {dtype} for float64 inputs")
    return notes


def _verdict(forward: str, input_gradient: str, weight_gradient: str, bias_gradient: str,
             errors: list[str]) -> tuple[bool | None, bool, str]:
    """(consistent, matches_torch, one-sentence verdict)."""
    if forward == NOT_RUN:
        return None, False, "could not be classified: forward failed on every case (see errors)"
    if input_gradient == NOT_RUN:
        return None, False, f"forward is {forward}; the backward failed on every case (see errors)"
    bias_ok = bias_gradient == BIAS_GRAD_SUM
    torch_like = (forward, input_gradient, weight_gradient) == (
        FORWARD_CORRELATION, INPUT_GRAD_FULL_CONVOLUTION, WEIGHT_GRAD_CORRELATION)
    flipped = (forward, input_gradient, weight_gradient) == (
        FORWARD_CONVOLUTION, INPUT_GRAD_NO_ROTATION, WEIGHT_GRAD_FLIPPED)
    if torch_like and bias_ok:
        return True, not errors, "matches torch: cross-correlation forward with its exact gradients"
    if flipped and bias_ok:
        return True, False, ("self-consistent true convolution: the gradients are right for its own forward, "
                             "but the kernel is rotated 180° relative to torch (torch weights need rot180)")
    problems = []
    if forward == NEITHER:
        problems.append("the forward is neither a cross-correlation nor a true convolution")
    if forward == FORWARD_CORRELATION and input_gradient == INPUT_GRAD_NO_ROTATION:
        problems.append("the input gradient correlates dY with W without rot180 where a full convolution is needed")
    if forward == FORWARD_CORRELATION and weight_gradient == WEIGHT_GRAD_FLIPPED:
        problems.append("the weight gradient is flipped (rot180) although the forward is not")
    if forward == FORWARD_CONVOLUTION and input_gradient == INPUT_GRAD_FULL_CONVOLUTION:
        problems.append("the input gradient rotates the kernel again although the forward already flips it")
    if forward == FORWARD_CONVOLUTION and weight_gradient == WEIGHT_GRAD_CORRELATION:
        problems.append("the weight gradient is not flipped although the forward flips the kernel")
    if input_gradient == NEITHER:
        problems.append("the input gradient matches no candidate formula")
    if weight_gradient == NEITHER:
        problems.append("the weight gradient matches no candidate formula")
    if not bias_ok:
        problems.append("the bias gradient is not the sum of dY over batch and space")
    return False, False, "inconsistent: " + "; ".join(problems or ["the backward is not the gradient of the forward"])


def classify_conv2d(forward: Callable[..., Any], backward: Callable[..., Any], *, seed: int = 0,
                    accepted: Collection[str] | None = None, origin: str | None = None,
                    constraint: Callable[[dict[str, Any]], str | None] | None = None) -> ConventionReport:
    """Classify a conv2d implementation that follows the contract.

    Parameters
    ----------
    forward : ``conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups) -> (out, cache)``.
        Keywords it does not accept (per ``inspect.signature``) are not passed; the cases then keep
        them at torch's defaults. x is (N, C, H, W), weight (F, C/groups, kh, kw), bias (F,).
    backward : ``conv2d_backward(dout, cache) -> (dx, dweight, dbias)``.
    seed : seed of the random float64 inputs and upstream gradients.
    accepted : hyperparameter keywords to pass (overrides the signature, e.g. for a wrapper with
        ``**kwargs`` that supports only some of them); None reads ``inspect.signature(forward)``.
    origin : name shown in reports (default: forward's module and qualified name).
    constraint : ``constraint(hparams) -> reason | None``; cases it rejects are not run.

    Returns
    -------
    ConventionReport; errors raised by the implementation are listed in ``errors``.
    """
    keywords = accepted_hyperparameters(forward) if accepted is None else tuple(
        name for name in HYPERPARAMETERS if name in set(accepted))
    rng = np.random.default_rng(seed)
    forward_tally = _Tally((FORWARD_CORRELATION, FORWARD_CONVOLUTION))
    input_tally = _Tally((INPUT_GRAD_FULL_CONVOLUTION, INPUT_GRAD_NO_ROTATION))
    weight_tally = _Tally((WEIGHT_GRAD_CORRELATION, WEIGHT_GRAD_FLIPPED))
    bias_tally = _Tally((BIAS_GRAD_SUM,))
    errors: list[str] = []
    notes: list[str] = []
    ran_forward = ran_backward = False
    cases = _cases(keywords, constraint)
    for case in cases:
        hyper = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1, **case.hyper}
        x = rng.standard_normal(case.x_shape)
        weight = rng.standard_normal(case.weight_shape)
        bias = rng.standard_normal(case.weight_shape[0])
        correlation = cross_correlate2d(x, weight, **hyper) + bias[None, :, None, None]
        convolution = true_convolve2d(x, weight, **hyper) + bias[None, :, None, None]
        grad_output = rng.standard_normal(correlation.shape)  # random: all ones would hide a missing flip
        inputs = {"x": x.copy(), "weight": weight.copy(), "bias": bias.copy(), "dout": grad_output.copy()}
        try:
            result = forward(inputs["x"], inputs["weight"], inputs["bias"], **case.hyper)
        except Exception as exc:  # the user's code: report, never raise
            errors.append(_describe_exception("forward", case, exc))
            continue
        if not (isinstance(result, tuple) and len(result) == 2):
            errors.append(f"[{case.label}] forward returned {type(result).__name__}, not (out, cache)")
            continue
        out, cache = result
        ran_forward = True
        forward_tally.add(FORWARD_CORRELATION, out, correlation)
        forward_tally.add(FORWARD_CONVOLUTION, out, convolution)
        notes += _shape_notes(case, {"output": out}, {"output": correlation.shape})
        try:
            grads = backward(inputs["dout"], cache)
        except Exception as exc:
            errors.append(_describe_exception("backward", case, exc))
            continue
        if not (isinstance(grads, (tuple, list)) and len(grads) == 3):
            errors.append(f"[{case.label}] backward returned {type(grads).__name__}, not (dx, dweight, dbias)")
            continue
        grad_input, grad_weight, grad_bias = grads
        ran_backward = True
        weight_correlation = grad_weight_correlation(x, grad_output, case.weight_shape[2:], **hyper)
        input_tally.add(INPUT_GRAD_FULL_CONVOLUTION, grad_input,
                        grad_input_full_convolution(grad_output, weight, case.x_shape[2:], **hyper))
        input_tally.add(INPUT_GRAD_NO_ROTATION, grad_input,
                        grad_input_rotated_correlation(grad_output, weight, case.x_shape[2:], rotate=False, **hyper))
        weight_tally.add(WEIGHT_GRAD_CORRELATION, grad_weight, weight_correlation)
        weight_tally.add(WEIGHT_GRAD_FLIPPED, grad_weight, rot180(weight_correlation))
        bias_tally.add(BIAS_GRAD_SUM, grad_bias, grad_output.sum(axis=(0, 2, 3)))
        notes += _shape_notes(case, {"dx": grad_input, "dweight": grad_weight, "dbias": grad_bias},
                              {"dx": x.shape, "dweight": weight.shape, "dbias": bias.shape})
        originals = {"x": x, "weight": weight, "bias": bias, "dout": grad_output}
        notes += [f"[{case.label}] {name} was modified in place" for name, value in inputs.items()
                  if not np.array_equal(value, originals[name])]

    labels = (forward_tally.verdict(ran_forward), input_tally.verdict(ran_backward),
              weight_tally.verdict(ran_backward), bias_tally.verdict(ran_backward))
    consistent, matches_torch, verdict = _verdict(*labels, errors)
    if len(keywords) < len(HYPERPARAMETERS):
        missing = ", ".join(name for name in HYPERPARAMETERS if name not in keywords)
        notes.append(f"forward does not accept {missing}: tested only at torch's defaults")
    if origin is None:
        origin = f"{getattr(forward, '__module__', '') or ''}.{getattr(forward, '__qualname__', repr(forward))}"
    return ConventionReport(
        forward=labels[0], input_gradient=labels[1], weight_gradient=labels[2], bias_gradient=labels[3],
        forward_errors=forward_tally.reported(ran_forward),
        input_gradient_errors=input_tally.reported(ran_backward),
        weight_gradient_errors=weight_tally.reported(ran_backward),
        bias_gradient_error=bias_tally.reported(ran_backward)[BIAS_GRAD_SUM],
        consistent=consistent, matches_torch=matches_torch, verdict=verdict,
        cases=tuple(case.label for case in cases), accepted_hyperparameters=keywords,
        errors=tuple(errors), notes=tuple(dict.fromkeys(notes)), origin=origin.lstrip("."),
    )
