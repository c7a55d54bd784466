"""Running one case: inputs, the implementation (contained), the oracle, the comparison.

``run_case`` is what a worker process executes; it returns plain dict records (one per compared
tensor) so they cross process boundaries and land in the report unchanged. Whatever the user's
code does inside one call (raise, return garbage, mutate its inputs) becomes part of those
records; hangs and process deaths are handled one level up, by the runner.
"""
from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from ..adapters import gradient_tuple, hparams_for_call, unsupported_reason
from ..cases import Case, make_inputs, make_upstream_gradient
from ..compare import CaseRun, compare_tensor, compared_tensors, status_records, base_record
from ..diagnosis import diagnose
from ..specs import LAYERS, Unsupported
from .implementation import Implementation, load_implementation
from .selfcheck import SELFCHECK_LIMIT, self_consistency

__all__ = ["run_case"]


@lru_cache(maxsize=8)
def _implementation(reference: str | None, map_path: str | None = None) -> Implementation:
    return load_implementation(reference, map_path)


def _copies(tensors: Mapping[str, np.ndarray | None]) -> dict[str, np.ndarray | None]:
    return {name: None if value is None else value.copy() for name, value in tensors.items()}


def _changed(original: np.ndarray | None, handed: np.ndarray | None) -> bool:
    if original is None:
        return False
    return handed.shape != original.shape or not np.array_equal(handed, original, equal_nan=True)


def run_case(reference: str | None, case: Case, selfcheck: bool = True, diagnose: bool = True, *,
             forward_only: bool = False, map_path: str | None = None) -> list[dict[str, Any]]:
    """Check one case of the implementation named by ``reference``; one record per compared tensor.

    ``forward_only``: compare the output alone (for code without a backward by design).
    """
    started = time.perf_counter()
    implementation = _implementation(reference, map_path)
    functions = implementation.layers.get(case.layer)
    if functions is None:
        return status_records(case, "skipped", f"not implemented: {implementation.name} has no {case.layer}")
    if forward_only:
        functions = dataclasses.replace(functions, backward=None, missing="")
    records = _run_supported(case, functions, selfcheck and not forward_only, diagnose)
    if forward_only:
        records = [r for r in records if r["tensor"] == "output"]
    for record in records:
        record["implementation"] = functions.description
        record["duration_s"] = time.perf_counter() - started
    return records


def _run_supported(case: Case, functions: Any, selfcheck: bool, diagnose: bool) -> list[dict[str, Any]]:
    reason = unsupported_reason(functions, case.hparam_map, case.shape_map)
    if reason:
        return status_records(case, "skipped", reason)
    spec = LAYERS[case.layer]
    tensors = make_inputs(case)
    dout = make_upstream_gradient(case, spec.output_shape(case.shape_map, case.hparam_map))
    run = CaseRun(case, spec, functions, tensors, dout, hparams_for_call(functions, case.hparam_map))
    records = _execute(run)
    if selfcheck and functions.backward is not None and not run.mutated and any(r["status"] in ("passed", "failed") for r in records):
        _add_selfcheck(run, records)
    if diagnose and any(r["status"] == "failed" for r in records):
        _add_diagnosis(run, records)
    return records


def _execute(run: CaseRun) -> list[dict[str, Any]]:
    from ..oracle import torch_results  # imported here: only the checking path needs torch

    case, spec = run.case, run.spec
    run.reference = torch_results(case.layer, run.tensors, case.hparam_map, run.dout, "float64")
    # For a float64 case torch at the case's dtype is the reference itself: no second run.
    run.torch_at_dtype = run.reference if case.dtype == "float64" else torch_results(
        case.layer, run.tensors, case.hparam_map, run.dout, case.dtype)
    handed = _copies(run.tensors)
    phase = "forward"
    try:
        returned = run.functions.forward(*[handed[n] for n in spec.tensors], **run.hparams)
        if not isinstance(returned, tuple) or len(returned) != 2:
            return status_records(case, "error", f"forward must return (out, cache), got {_describe(returned)}")
        run.results["output"], cache = returned
        changed_by_forward = [n for n in spec.tensors if _changed(run.tensors[n], handed[n])]
        run.mutated += [f"forward mutated its input '{n}' in place" for n in changed_by_forward]
        if run.functions.backward is None:
            return _without_backward(run)
        phase = "backward"
        handed_dout = run.dout.copy()
        grads = run.functions.backward(handed_dout, cache)
        if _changed(run.dout, handed_dout):
            run.mutated.append("backward mutated the upstream gradient 'dout' in place")
        run.mutated += [f"backward mutated the input '{n}' in place" for n in spec.tensors
                        if n not in changed_by_forward and _changed(run.tensors[n], handed[n])]
    except Unsupported as error:
        return status_records(case, "skipped", f"unsupported: {error}")
    except Exception as error:  # the user's code may raise anything: it becomes a row, not a crash
        message = f"{phase} raised {type(error).__name__}: {error}"
        trace = traceback.format_exc()
        if phase == "forward":
            return status_records(case, "error", message, traceback=trace)
        records = _compare(run)
        for record in records:
            if record["tensor"] != "output":
                record.update(status="error", reason=message, traceback=trace)
        return records
    grad_error = _unpack_grads(run, grads)
    records = _compare(run)
    for record in records:
        if grad_error and record["tensor"] != "output":
            record.update(status="failed", reason=grad_error)
        if run.mutated:
            record.update(status="failed", reason="; ".join(run.mutated + ([record["reason"]] if record["reason"] else [])))
    return records


def _without_backward(run: CaseRun) -> list[dict[str, Any]]:
    """The output compared; each gradient an error naming the missing function (none with --forward-only)."""
    records = _compare(run)
    for record in records:
        if record["tensor"] != "output":
            record.update(status="error", reason=f"no backward: {run.functions.missing} is missing "
                                                 "(use --forward-only to check outputs alone)")
    return records


def _describe(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return type(value).__name__


def _unpack_grads(run: CaseRun, grads: Any) -> str:
    names = run.spec.differentiable
    grads = gradient_tuple(grads)
    if len(grads) != len(names):
        return (f"backward returned {len(grads)} gradient(s), expected {len(names)} "
                f"({', '.join(names)}, in forward's order)")
    for name, grad in zip(names, grads):
        run.results[f"grad_{name}"] = grad
    return ""


def _compare(run: CaseRun) -> list[dict[str, Any]]:
    case = run.case
    records = []
    for tensor in compared_tensors(case):
        comparison = compare_tensor(tensor, run.results.get(tensor), run.reference.get(tensor),
                                    run.torch_at_dtype.get(tensor), case.dtype, case.tolerance_map)
        record = base_record(case, tensor)
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


def _add_selfcheck(run: CaseRun, records: list[dict[str, Any]]) -> None:
    outcome = self_consistency(run.spec, run.functions, run.tensors, run.hparams, run.dout, run.case.seed)
    for record in records:
        value = outcome.get(record["tensor"])
        if isinstance(value, float):
            record["selfcheck_error"] = value
            record["selfcheck"] = "ok" if value <= SELFCHECK_LIMIT else "backward disagrees with own forward"
        elif isinstance(value, str):
            record["selfcheck"] = value
        elif "reason" in outcome and record["tensor"] != "output":
            record["selfcheck"] = str(outcome["reason"])


def _add_diagnosis(run: CaseRun, records: list[dict[str, Any]]) -> None:
    try:
        findings = diagnose(run)
    except Exception:  # a diagnosis is a hint: it must never turn a failure into a crash
        return
    for record in records:
        if record["status"] == "failed" and findings.get(record["tensor"]):
            record["diagnosis"] = findings[record["tensor"]]
