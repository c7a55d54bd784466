"""A result of the wrong dtype: say which dtype came back, the likely cause, and whether the values
are right as well (a wrong dtype must never hide a value error in the same tensor)."""
from __future__ import annotations

import numpy as np

from ..compare import compare_tensor
from .context import Context

__all__ = ["dtype_message", "wrong_dtype"]


def wrong_dtype(context: Context, tensor: str) -> bool:
    """The user's result for ``tensor`` has the right shape and is numeric, but not of the case's dtype
    (a wrong shape is reported first, as the comparison does)."""
    result, reference = context.result(tensor), context.reference(tensor)
    return (result is not None and reference is not None and result.shape == np.shape(reference)
            and result.dtype != np.dtype(context.dtype))


def _likely_cause(returned: np.dtype, expected: str) -> str:
    if returned == np.float64 and expected == "float32":
        return " (np.zeros without dtype?)"
    if returned == np.float32 and expected == "float64":
        return " (astype(np.float32) or a float32 buffer?)"
    if returned.kind in "iu":
        return " (an integer buffer, e.g. np.zeros_like of integer data?)"
    return ""


def dtype_message(context: Context, tensor: str, value_finding: str | None) -> str:
    """"returns float64 for float32 inputs (np.zeros without dtype?); values right" or
    "...; values also wrong: <the mistake a value check found, or the mismatch>"."""
    result = context.result(tensor)
    assert result is not None
    head = f"returns {result.dtype} for {context.dtype} inputs{_likely_cause(result.dtype, context.dtype)}"
    if context.close(tensor, result):
        return f"{head}; values right"
    if not value_finding:
        comparison = compare_tensor(tensor, result, context.reference(tensor),
                                    context.run.torch_at_dtype.get(tensor), context.dtype, context.overrides)
        value_finding = comparison.reason.split("values also wrong: ", 1)[-1]
    return f"{head}; values also wrong: {value_finding}"
