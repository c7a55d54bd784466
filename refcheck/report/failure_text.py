"""Failure text for one case's records, in the manner of ``torch.testing.assert_close``.

Shared by the pytest plugin (a failing case's message) and ``refcheck fuzz`` (the minimal failing
case): one block per failing tensor (mismatched elements, greatest difference and where, the error
against torch's own, the self-check, the diagnosis), each error once with its traceback, and the
command that reruns the case.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["case_outcome", "failure_message"]

Record = Mapping[str, Any]

_MISMATCH = re.compile(r"mismatched elements (\d+) / (\d+)")


def case_outcome(records: Sequence[Record]) -> tuple[str, str]:
    """The pytest outcome of a case from its records: ("passed" | "failed" | "skipped", reason).

    Any failed or errored tensor fails the case; a case is skipped when all its rows are.
    """
    statuses = {record["status"] for record in records}
    if statuses == {"skipped"}:
        return "skipped", str(records[0].get("reason") or "skipped")
    if statuses & {"failed", "error"}:
        problems = [record for record in records if record["status"] in ("failed", "error")]
        return "failed", "; ".join(dict.fromkeys(_headline(record) for record in problems))
    return "passed", ""


def failure_message(records: Sequence[Record], command: str) -> str:
    """A message in the manner of ``torch.testing.assert_close``, one block per failing tensor.

    The first line (pytest's short summary) names every problem; the last lines give ``command``.
    """
    _, headline = case_outcome(records)
    lines = [headline]
    shown_errors: set[str] = set()
    for record in records:
        if record["status"] == "failed":
            lines += [""] + _failed_block(record)
        elif record["status"] == "error":
            # An exception is reported once, though every gradient row carries it.
            key = str(record.get("reason"))
            tensors = [r["tensor"] for r in records if r["status"] == "error" and str(r.get("reason")) == key]
            if key in shown_errors:
                continue
            shown_errors.add(key)
            lines += ["", f"{', '.join(tensors)}: error: {key}"]
            if record.get("traceback"):
                lines += ["  " + line for line in str(record["traceback"]).rstrip().splitlines()]
    close = [f"{r['tensor']} ({_number(r.get('error_eps'), '.3g')} eps)" for r in records if r["status"] == "passed"]
    if close:
        lines += ["", f"Within tolerance: {', '.join(close)}"]
    lines += ["", "Reproduce this case alone:", f"  {command}"]
    return "\n".join(lines)


def _mismatch_counts(record: Record) -> tuple[int, int] | None:
    if record.get("mismatched") is not None and record.get("total") is not None:
        return int(record["mismatched"]), int(record["total"])
    found = _MISMATCH.search(str(record.get("reason") or ""))
    return (int(found.group(1)), int(found.group(2))) if found else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any, spec: str = ".6g") -> str:
    return format(value, spec) if _is_number(value) else "n/a"


def _numeric_failure(record: Record) -> bool:
    """The tensor was compared and its error is over the tolerance."""
    error, allowed = record.get("error_eps"), record.get("tolerance_eps")
    return _is_number(error) and _is_number(allowed) and error > allowed


def _headline(record: Record) -> str:
    tensor, reason = record["tensor"], str(record.get("reason") or "")
    if record["status"] == "error":
        return f"error: {reason}"
    counts = _mismatch_counts(record)
    if _numeric_failure(record) and counts and reason.startswith(f"{tensor}: mismatched"):
        return (f"{tensor} mismatched {counts[0]} / {counts[1]} elements "
                f"({record['error_eps']:.3g} eps > {record['tolerance_eps']:.3g} allowed)")
    return reason or f"{tensor} failed"


def _failed_block(record: Record) -> list[str]:
    tensor, dtype = record["tensor"], record.get("dtype", "")
    reason = str(record.get("reason") or "")
    numeric = _numeric_failure(record)
    title = f"{tensor} is not close to torch.autograd's float64 result" if numeric else tensor
    lines = [f"{title} ({dtype}):"]
    if reason and not reason.startswith(f"{tensor}: mismatched"):
        lines.append(f"  {reason}")  # shape, dtype, None, non-finite values, mutated inputs
    if numeric:
        counts = _mismatch_counts(record)
        if counts:
            mismatched, total = counts
            lines.append(f"  Mismatched elements: {mismatched} / {total} ({100.0 * mismatched / max(total, 1):.1f}%)")
        error, allowed, largest = record["error_eps"], record["tolerance_eps"], record.get("max_abs_error")
        if _is_number(largest):
            where = f" at index {record['worst_index']}" if record.get("worst_index") else ""
            # allowed |difference| = tolerance_eps * eps * scale, and error_eps = largest / scale / eps.
            allowed_abs = f" (up to {largest * allowed / error:.3g} allowed)" if error > 0 else ""
            lines.append(f"  Greatest absolute difference: {largest:.6g}{where}{allowed_abs}")
        lines.append(f"  Error: {error:.3g} eps of {dtype} (torch's own {dtype} result: "
                     f"{_number(record.get('torch_error_eps'), '.3g')} eps; allowed: {allowed:.3g} eps)")
    if record.get("selfcheck"):
        detail = record["selfcheck"]
        if _is_number(record.get("selfcheck_error")):
            detail += f" (relative disagreement {record['selfcheck_error']:.3g})"
        lines.append(f"  Self-check (backward vs finite differences of own forward): {detail}")
    if record.get("diagnosis"):
        diagnosis = str(record["diagnosis"]).strip().splitlines()
        lines.append(f"  Diagnosis: {diagnosis[0]}")
        lines += [f"    {line}" for line in diagnosis[1:]]
    return lines
