"""Comparing many tensors at once: the common case of a sweep, in a few vectorized calls.

A sweep compares tens of thousands of small tensors, and :func:`~.tolerance.compare_tensor` spends
most of its time on the calls themselves, not on the arithmetic. :func:`compare_passing` takes the
tensors of a whole chunk of cases, flattens them into one float64 vector each for the results,
the references and torch's results at the case dtype, and reduces per tensor with
``np.maximum.reduceat``.

It answers only for a tensor that plainly passes: a numpy array of the case's dtype and the
reference's shape, not empty, finite in all three arrays, within the tolerance. Its figures are the
ones :func:`compare_tensor` gives (the same element-wise differences and exact maxima, the same
scalar arithmetic after them). Every other tensor gets None, and the caller compares it one at a
time, so failures, odd types and non-finite values keep their own reasons.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .tolerance import TensorComparison, _eps, tolerance_eps

__all__ = ["TensorItem", "compare_passing"]


class TensorItem(NamedTuple):
    """One tensor to compare: the implementation's ``result``, the float64 ``reference`` and
    torch's result at ``dtype`` (both of one shape), and the case's tolerance overrides."""

    result: Any
    reference: Any
    torch_at_dtype: Any
    dtype: str
    overrides: Mapping[str, float] | None


def _eligible(item: TensorItem) -> bool:
    """A plain array of the right dtype and shape, with plain float64 and at-dtype references."""
    result, reference, at_dtype = item.result, item.reference, item.torch_at_dtype
    # Exact types: a subclass (or anything else) may behave differently under numpy's functions.
    return (type(result) is np.ndarray and type(reference) is np.ndarray and type(at_dtype) is np.ndarray
            and reference.dtype == np.float64 and result.dtype == at_dtype.dtype == np.dtype(item.dtype)
            and result.dtype.kind == "f" and result.shape == reference.shape == at_dtype.shape
            and reference.size > 0)


def compare_passing(items: Sequence[TensorItem]) -> list[TensorComparison | None]:
    """For each item: its comparison when it passes plainly (see the module), else None."""
    chosen = [i for i, item in enumerate(items) if _eligible(item)]
    outcome: list[TensorComparison | None] = [None] * len(items)
    if not chosen:
        return outcome
    flat = [items[i] for i in chosen]
    sizes = np.array([item.reference.size for item in flat])
    starts = np.zeros(len(flat), dtype=np.intp)
    np.cumsum(sizes[:-1], out=starts[1:])
    reference = np.concatenate([item.reference.ravel() for item in flat])
    # To float64 as compare_tensor does (astype): exact for float32.
    result = np.concatenate([item.result.ravel() for item in flat], dtype=np.float64)
    at_dtype = np.concatenate([item.torch_at_dtype.ravel() for item in flat], dtype=np.float64)
    eps = np.array([_eps(item.dtype) for item in flat])
    # Non-finite values are only carried along here: their tensors are left to compare_tensor.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        finite, offset, torch_eps, error, relative, scale, max_abs = _figures(
            np.abs(result - reference), np.abs(at_dtype - reference), np.abs(reference), starts, sizes, eps)
    item_eps = eps.tolist()
    for k, i in enumerate(chosen):
        if not finite[k]:
            continue
        item = flat[k]
        allowed = tolerance_eps(item.dtype, torch_eps[k], item.overrides)  # an int when overridden by one
        # compare_tensor's threshold, multiplied in its order (eps * scale may be subnormal).
        if max_abs[k] > allowed * item_eps[k] * scale[k] or error[k] > allowed:
            continue  # a failure: compared alone, for its counts and reason
        outcome[i] = TensorComparison(True, "", max_abs_error=max_abs[k], max_rel_error=relative[k], error_eps=error[k],
                                      torch_error_eps=torch_eps[k], tolerance_eps=allowed,
                                      worst_index=_position(offset[k], item.reference.shape), mismatched=0,
                                      total=item.reference.size)
    return outcome


def _figures(diff: np.ndarray, torch_diff: np.ndarray, magnitude: np.ndarray, starts: np.ndarray,
             sizes: np.ndarray, eps: np.ndarray) -> tuple[list, ...]:
    """Per tensor (a segment of the flat vectors, from ``starts``): whether the three arrays are
    finite, the offset of the first largest difference, torch's error and the result's in epsilons,
    the relative error, the scale (the largest magnitude, 1.0 for zeros) and the largest difference,
    as Python values."""
    largest_diff = np.maximum.reduceat(diff, starts)
    largest_torch = np.maximum.reduceat(torch_diff, starts)
    largest = np.maximum.reduceat(magnitude, starts)
    finite = np.isfinite(largest_diff) & np.isfinite(largest_torch) & np.isfinite(largest)
    # The first position of each finite tensor's largest difference: argmax's choice.
    at_max = np.flatnonzero(diff == np.repeat(np.where(finite, largest_diff, np.nan), sizes))
    first = at_max[np.minimum(np.searchsorted(at_max, starts), len(at_max) - 1)] if at_max.size else starts
    # compare_tensor's scalar arithmetic, element-wise: IEEE operations round the same in both.
    scale = np.where(largest > 0, largest, 1.0)
    return (finite.tolist(), (first - starts).tolist(), (largest_torch / scale / eps).tolist(),
            (largest_diff / scale / eps).tolist(), (largest_diff / scale).tolist(), scale.tolist(),
            largest_diff.tolist())


def _position(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """np.unravel_index(flat_index, shape) as a tuple of ints (C order)."""
    position = []
    for extent in reversed(shape):
        flat_index, index = divmod(flat_index, extent)
        position.append(index)
    return tuple(reversed(position))
