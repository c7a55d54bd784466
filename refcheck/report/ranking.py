"""Which failure is worst: a severity order over records, and the cause of a failure in a few words.

A record's rank is ``(severity, ratio)``: errors (the implementation raised, hung or died) come
first, then structural failures (missing tensor, wrong shape, dtype, non-finite values, wrong number
of gradients, an input mutated in place), then numeric mismatches, then passes; within one
severity the larger error relative to the tolerance (``error_eps / tolerance_eps``) is worse.
The ratio is dtype-free, so float32 and float64 cases compare on one scale.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SEVERITY", "cause", "error_ratio", "rank", "reason_kind", "record_number"]

SEVERITY = {"error": 3, "structural": 2, "numeric": 1, "passed": 0, "skipped": -1}

_STRUCTURAL = (
    ("output buffer reused", "output buffer reused"),
    ("mutated", "input mutated in place"),
    ("gradient(s), expected", "wrong number of gradients"),
    (" shape ", "wrong shape"),
    (" dtype ", "wrong dtype"),
    ("non-finite", "non-finite values"),
    (" is None", "tensor missing (None)"),
    ("should be None", "tensor returned for an absent input"),
    ("expected a numpy array", "not a numpy array"),
)


def record_number(value: Any) -> float:
    """A float from a record field (None, '', 'inf' strings from JSON become nan/inf)."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def error_ratio(record: Mapping[str, Any]) -> float:
    """The record's error relative to its tolerance (nan when nothing numeric was compared)."""
    error, allowed = record_number(record.get("error_eps")), record_number(record.get("tolerance_eps"))
    if math.isnan(error) or math.isnan(allowed) or allowed <= 0:
        return math.nan
    return error / allowed


def reason_kind(status: str, reason: str) -> str:
    """The kind of a failure from its status and reason: 'wrong shape', 'forward raised ValueError', ..."""
    reason = str(reason or "")
    if status == "error":
        raised = re.match(r"(forward|backward) raised (\w+)", reason)
        if raised:
            return f"{raised.group(1)} raised {raised.group(2)}"
        return reason.split(":", 1)[0].strip() or "error"
    if status == "failed":
        for needle, kind in _STRUCTURAL:
            if needle in reason:
                return kind
        return "wrong values"
    return status


def _severity(record: Mapping[str, Any]) -> int:
    status = str(record.get("status"))
    if status == "failed":
        return SEVERITY["numeric"] if reason_kind(status, record.get("reason", "")) == "wrong values" \
            else SEVERITY["structural"]
    return SEVERITY.get(status, SEVERITY["skipped"])


def rank(record: Mapping[str, Any]) -> tuple[int, float]:
    """Sort key: larger is worse. Non-numeric failures rank by severity alone."""
    ratio = error_ratio(record)
    return _severity(record), (-1.0 if math.isnan(ratio) else ratio)


def cause(record: Mapping[str, Any]) -> str:
    """What explains a failing record, in a few words shared by every case it explains.

    A diagnosis reads 'title: details for this case'; its title is the cause. Without a
    diagnosis, the kind of the reason ('wrong shape', 'forward raised ValueError').
    """
    diagnosis = record.get("diagnosis")
    if isinstance(diagnosis, str) and diagnosis.strip():
        title = diagnosis.strip().split(": ", 1)[0]
        return re.sub(r"\s*\(.*$", "", title) or title
    return reason_kind(str(record.get("status")), str(record.get("reason") or ""))
