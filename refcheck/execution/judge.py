"""The trusted side's verdict on one case: the implementation's plain results against the oracle's.

``judge`` turns what the implementation's worker returned (see :mod:`.worker`) and the oracle's
float64 and at-dtype references into result records: the comparison of each tensor, the
self-check columns, mutations, errors of the backward, frameworks, captured output, and the
diagnosis of failures (whose re-runs of the user's code go back to the implementation's process).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..cases import Case, make_inputs, make_upstream_gradients
from ..compare import CaseRun, TensorComparison, base_record, compare_tensor, compared_tensors, status_records
from ..diagnosis import diagnose
from ..specs import LAYERS
from .selfcheck import SELFCHECK_LIMIT

__all__ = ["framework_reason", "judge", "judged_tensors"]

Record = dict[str, Any]
Rerun = Callable[[dict[str, Any], dict[str, np.ndarray]], dict[str, Any]]


def framework_reason(frameworks: list[str]) -> str:
    names = ", ".join(frameworks)
    return (f"the implementation imported {names}: refcheck checks from-scratch numpy code, not a framework's "
            f"(or refcheck's) own layers (pass --allow-frameworks to check it anyway)")


def _extras(raw: dict[str, Any]) -> dict[str, Any]:
    """The columns every record of the case carries: where it came from, what it printed."""
    extra = {"implementation": raw.get("origin", ""), "frameworks": ", ".join(raw.get("frameworks", []))}
    for stream in ("stdout", "stderr"):
        if raw.get(stream):
            extra[stream] = raw[stream]
    if raw.get("traceback"):
        extra["traceback"] = raw["traceback"]
    return extra


def judge(case: Case, raw: dict[str, Any], reference: dict[str, Any] | None, torch_at_dtype: dict[str, Any] | None,
          *, rerun: Rerun | None = None, diagnose_failures: bool = True, allow_frameworks: bool = False,
          forward_only: bool = False, comparisons: Mapping[str, TensorComparison] | None = None) -> list[Record]:
    """One record per compared tensor of the case (see cases.csv's columns). ``comparisons``: tensors
    already compared (by name), as :func:`compare_tensor` would have; the others are compared here."""
    extra = _extras(raw)
    if raw["status"] == "skipped":
        return status_records(case, "skipped", raw["reason"], **extra)
    if raw["frameworks"] and not allow_frameworks:
        return status_records(case, "failed", framework_reason(raw["frameworks"]), **extra)
    if raw["status"] == "error":
        return status_records(case, "error", raw["reason"], **extra)
    assert reference is not None and torch_at_dtype is not None
    records = _compare(case, raw["results"], reference, torch_at_dtype, forward_only, comparisons or {})
    for record in records:
        record.update(extra)
        is_gradient = record["tensor"].startswith("grad_")
        if is_gradient and raw["backward_error"]:
            record.update(status="error", reason=raw["backward_error"])
        elif raw.get("backward_skipped") and (is_gradient or record["status"] == "passed"):
            # The case is skipped, never passed, with its gradients unchecked: right outputs say so
            # in the reason, wrong ones still fail.
            right = "" if is_gradient else " (its outputs were compared and are right)"
            record.update(status="skipped", reason=raw["backward_skipped"] + right)
        elif is_gradient and raw["grad_error"]:
            record.update(status="failed", reason=raw["grad_error"])
        if raw["mutated"]:
            record.update(status="failed", reason="; ".join(raw["mutated"] + ([record["reason"]] if record["reason"] else [])))
        if raw["frameworks"] and record["status"] == "passed":
            record["reason"] = f"passed using {extra['frameworks']} (allowed by --allow-frameworks)"
    _add_selfcheck(raw["selfcheck"], records)
    if diagnose_failures and any(r["status"] == "failed" for r in records):
        _add_diagnosis(case, raw, reference, torch_at_dtype, rerun, records)
    return records


def judged_tensors(case: Case, forward_only: bool) -> list[str]:
    """The tensors of a case whose values are compared (its outputs alone with ``forward_only``)."""
    return [t for t in compared_tensors(case) if not (forward_only and t.startswith("grad_"))]


def _compare(case: Case, results: dict[str, Any], reference: dict[str, Any], torch_at_dtype: dict[str, Any],
             forward_only: bool, comparisons: Mapping[str, TensorComparison]) -> list[Record]:
    records = []
    base = None
    for tensor in judged_tensors(case, forward_only):
        comparison = comparisons.get(tensor)
        if comparison is None:
            comparison = compare_tensor(tensor, results.get(tensor), reference.get(tensor),
                                        torch_at_dtype.get(tensor), case.dtype, case.tolerance_map)
        if base is None:
            base = base_record(case, tensor)
        record = dict(base)  # the case's descriptive columns, the same for each of its tensors
        record["tensor"] = tensor
        record.update(
            status="passed" if comparison.passed else "failed", reason=comparison.reason,
            max_abs_error=comparison.max_abs_error, max_rel_error=comparison.max_rel_error,
            error_eps=comparison.error_eps, torch_error_eps=comparison.torch_error_eps,
            tolerance_eps=comparison.tolerance_eps,
            worst_index=repr(comparison.worst_index) if comparison.worst_index is not None else "",
            mismatched=comparison.mismatched, total=comparison.total,
        )
        records.append(record)
    return records


def _add_selfcheck(outcome: dict[str, Any], records: list[Record]) -> None:
    for record in records:
        value = outcome.get(record["tensor"])
        if isinstance(value, float):
            record["selfcheck_error"] = value
            record["selfcheck"] = "ok" if value <= SELFCHECK_LIMIT else "backward disagrees with own forward"
        elif isinstance(value, str):
            record["selfcheck"] = value
        elif "reason" in outcome and record["tensor"].startswith("grad_"):
            record["selfcheck"] = str(outcome["reason"])


def _add_diagnosis(case: Case, raw: dict[str, Any], reference: dict[str, Any], torch_at_dtype: dict[str, Any],
                   rerun: Rerun | None, records: list[Record]) -> None:
    gradients = make_upstream_gradients(case)
    run = CaseRun(case, LAYERS[case.layer], None, make_inputs(case), next(iter(gradients.values()), None),
                  dict(case.hparam_map), results=dict(raw["results"]), reference=reference,
                  torch_at_dtype=torch_at_dtype, mutated=list(raw["mutated"]), gradients=gradients, rerun=rerun,
                  interleaved=bool(raw.get("interleaved")), origin=str(raw.get("origin", "")))
    try:
        findings = diagnose(run)
    except Exception:  # a diagnosis is a hint: it must never turn a failure into a crash
        return
    for record in records:
        if record["status"] == "failed" and findings.get(record["tensor"]):
            record["diagnosis"] = findings[record["tensor"]]
