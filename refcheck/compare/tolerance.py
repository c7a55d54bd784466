"""Comparing one tensor of an implementation with the float64 reference, and the tolerance rule.

The error of a tensor is measured relative to its scale (the largest magnitude in the reference)
and expressed in units of the case dtype's machine epsilon::

    error_eps = max|impl - reference| / max(max|reference|, tiny) / eps(dtype)

torch's own result at the case's dtype is measured the same way. A tensor passes when

    error_eps <= max(floor[dtype], torch_factor * torch_error_eps)

with floor = 64 for float32, 256 for float64 and torch_factor = 8 (each can be overridden per
layer in the case files). A correct float32 implementation lands within a few epsilons, like torch;
a float64 implementation that computes internally in float32 is off by ~1e8 float64 epsilons.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import math

import numpy as np

from ..adapters import ForeignResult

__all__ = ["DEFAULT_TOLERANCE", "TensorComparison", "compare_tensor", "relative_error_eps", "tolerance_eps"]

DEFAULT_TOLERANCE = {"float32": 64.0, "float64": 256.0, "torch_factor": 8.0}


@dataclass(frozen=True)
class TensorComparison:
    """The outcome of comparing one tensor. Errors are None when no numeric comparison was possible."""

    passed: bool
    reason: str
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    error_eps: float | None = None
    torch_error_eps: float | None = None
    tolerance_eps: float | None = None
    worst_index: tuple[int, ...] | None = None
    mismatched: int | None = None
    total: int | None = None


# The ufuncs' own reductions: the same results as ndarray.max, without its Python-level wrapper
# (a sweep compares tens of thousands of small tensors).
_max = np.maximum.reduce
_EPS = {name: float(np.finfo(name).eps) for name in ("float16", "float32", "float64")}


def _eps(dtype: str) -> float:
    return _EPS[dtype] if dtype in _EPS else float(np.finfo(dtype).eps)


def _scale(reference: np.ndarray) -> float:
    largest = float(_max(np.abs(reference), axis=None, initial=0.0))
    if not math.isfinite(largest):  # inf or nan somewhere: the largest finite magnitude
        finite = np.abs(reference[np.isfinite(reference)])
        largest = float(finite.max()) if finite.size else 0.0
    return largest if largest > 0 else 1.0


def relative_error_eps(result: np.ndarray, reference: np.ndarray, dtype: str) -> float:
    """max|result - reference| / scale(reference) / eps(dtype); non-finite positions that agree count as 0."""
    return _error_eps(result, reference, _scale(reference), _eps(dtype))


def _error_eps(result: np.ndarray, reference: np.ndarray, scale: float, eps: float) -> float:
    """:func:`relative_error_eps` with the reference's scale and the dtype's epsilon given."""
    return _differences_and_max(np.asarray(result, dtype=np.float64), reference)[1] / scale / eps


def _differences_and_max(result: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """(|result - reference| with agreeing non-finite positions at 0 and NaN as inf, its largest
    value (0 when empty), whether both arrays were finite everywhere)."""
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(result - reference)
    largest = float(_max(diff, axis=None)) if diff.size else 0.0
    if math.isfinite(largest):  # no inf or nan in diff: both are finite everywhere
        return diff, largest, True
    diff = _reconciled(diff, result, reference)
    return diff, float(diff.max()), False


def _reconciled(diff: np.ndarray, result: np.ndarray, reference: np.ndarray) -> np.ndarray:
    both_same_nonfinite = ~np.isfinite(reference) & (result == reference)
    both_nan = np.isnan(reference) & np.isnan(result)
    diff = np.where(both_same_nonfinite | both_nan, 0.0, diff)
    return np.where(np.isnan(diff), np.inf, diff)


def tolerance_eps(dtype: str, torch_error_eps: float, overrides: Mapping[str, float] | None = None) -> float:
    """The allowed error in epsilons: max(floor[dtype], torch_factor * torch's own error)."""
    rule = {**DEFAULT_TOLERANCE, **(overrides or {})}
    return max(rule[dtype], rule["torch_factor"] * torch_error_eps)


def compare_tensor(name: str, result: Any, reference: np.ndarray | None, torch_at_dtype: np.ndarray | None,
                   dtype: str, overrides: Mapping[str, float] | None = None) -> TensorComparison:
    """Compare ``result`` (from the implementation) with the float64 ``reference``.

    Checks, in order: presence, type, shape, dtype, non-finite values, then the error rule. A numeric
    result of the wrong dtype fails, and its values are compared all the same: the reason ends with
    "values right" or "values also wrong: ..." and the error columns are filled.
    """
    if reference is None:
        if result is None:
            return TensorComparison(True, "")
        return TensorComparison(False, f"{name} should be None (no such input), got {type(result).__name__}")
    if result is None:
        return TensorComparison(False, f"{name} is None, expected an array of shape {reference.shape}")
    if isinstance(result, ForeignResult):
        return TensorComparison(False, f"{name} is a {result.type_name}, expected a numpy array")
    if not isinstance(result, np.ndarray) and not np.isscalar(result):
        return TensorComparison(False, f"{name} is a {type(result).__name__}, expected a numpy array")
    result = np.asarray(result)
    if result.shape != reference.shape:
        return TensorComparison(False, f"{name} shape {result.shape} != expected {reference.shape}")
    wrong_dtype = f"{name} dtype {result.dtype} != expected {dtype}" if result.dtype != np.dtype(dtype) else ""
    if wrong_dtype and result.dtype.kind not in "biuf":
        return TensorComparison(False, wrong_dtype)
    scale = _scale(reference)
    eps = _eps(dtype)
    torch_eps = 0.0 if torch_at_dtype is None else _error_eps(torch_at_dtype, reference, scale, eps)
    allowed = tolerance_eps(dtype, torch_eps, overrides)
    wide = result.astype(np.float64)
    diff, max_abs, finite = _differences_and_max(wide, reference)
    error = max_abs / scale / eps
    worst = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), diff.shape)) if diff.size else ()
    threshold = allowed * eps * scale
    # Every difference is at most max_abs (exactly, in float64): when that is within the threshold
    # none is counted.
    counted = max_abs > threshold or diff.dtype != np.float64
    mismatched = int(np.count_nonzero(diff > threshold)) if counted else 0
    rel = max_abs / scale
    stats = dict(max_abs_error=max_abs, max_rel_error=rel, error_eps=error, torch_error_eps=torch_eps,
                 tolerance_eps=allowed, worst_index=worst, mismatched=mismatched, total=int(diff.size))
    values = _values_reason(name, wide, reference, error, allowed, worst, mismatched, max_abs, finite)
    if wrong_dtype:
        # The dtype alone fails the tensor; the values are still compared so that a value error in the
        # same tensor is not hidden behind it.
        return TensorComparison(False, f"{wrong_dtype}; " + (f"values also wrong: {values}" if values else "values right"),
                                **stats)
    return TensorComparison(not values, values, **stats)


def _values_reason(name: str, wide: np.ndarray, reference: np.ndarray, error: float, allowed: float,
                   worst: tuple[int, ...], mismatched: int, max_abs: float, finite: bool = False) -> str:
    """Why the values fail (non-finite values, then the error rule), or "" when they pass.
    ``finite``: both arrays are known to be finite everywhere."""
    nonfinite = None if finite else ~np.isfinite(wide) & np.isfinite(reference)
    if nonfinite is not None and nonfinite.any():
        index = tuple(int(i) for i in np.argwhere(nonfinite)[0])
        return (f"{name} has {int(nonfinite.sum())} non-finite values where the reference "
                f"is finite (first at index {index}: {wide[index]})")
    if error > allowed:
        reference_value = float(reference[worst]) if worst or reference.ndim == 0 else float("nan")
        got, expected = _distinct(float(wide[worst]), reference_value)
        return (f"{name}: mismatched elements {mismatched} / {wide.size} "
                f"({100.0 * mismatched / max(wide.size, 1):.1f}%); greatest difference {max_abs:.3g} at index "
                f"{worst} ({got} vs {expected}), {error:.3g} eps > {allowed:.3g} allowed")
    return ""


def _distinct(value: float, reference: float) -> tuple[str, str]:
    """Both values with 6 significant digits, or as many more as it takes to tell them apart."""
    for digits in (6, 9, 12, 17):
        shown = f"{value:.{digits}g}", f"{reference:.{digits}g}"
        if shown[0] != shown[1]:
            break
    return shown
