"""What a case's result from an implementation worker must look like before it is judged.

The worker runs the code under test, which can replace what the worker sends back: a result of
the wrong shape (a string where a number belongs, a list where the tensors belong) must become
that case's error row, not a crash of the run that loses every other case's result.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["malformed"]

_STATUSES = ("ran", "skipped", "error")
_TEXT = ("reason", "backward_error", "backward_skipped", "grad_error", "traceback", "stdout", "stderr", "origin")


def malformed(raw: Any, case_id: str) -> str:
    """Why ``raw`` is not a worker's result for case ``case_id`` ('' when it is one)."""
    if not isinstance(raw, dict):
        return f"a {type(raw).__name__}, not a dict"
    if raw.get("case") != case_id:
        return f"it is for case {raw.get('case')!r}"
    if raw.get("status") not in _STATUSES:
        return f"its status is {raw.get('status')!r}"
    for key in _TEXT:
        if not isinstance(raw.get(key, ""), str):
            return f"its {key} is a {type(raw[key]).__name__}"
    if not isinstance(raw.get("results"), dict) or not all(isinstance(k, str) for k in raw["results"]):
        return "its results are not a dict of tensors by name"
    for key in ("mutated", "frameworks"):
        if not isinstance(raw.get(key), list) or not all(isinstance(item, str) for item in raw[key]):
            return f"its {key} is not a list of strings"
    seconds = raw.get("user_seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        return f"its user_seconds is {seconds!r}"
    if not isinstance(raw.get("selfcheck", {}), dict):
        return "its selfcheck is not a dict"
    for key, value in raw.get("selfcheck", {}).items():
        if not isinstance(key, str) or not isinstance(value, (str, float, int, np.floating)):
            return f"its selfcheck holds a {type(value).__name__}"
    if not isinstance(raw.get("interleaved", False), bool):
        return "its interleaved flag is not a bool"
    return ""
