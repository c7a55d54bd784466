"""Explaining failures: ``diagnose(run)`` names the known mistake behind each failing tensor.

`refcheck run` calls it for every case with a failed tensor and writes the result into the
``diagnosis`` column. A diagnosis is found by recomputing what a specific mistake would produce
(kernel flipped, weight layout transposed, NHWC, mean instead of sum, stride ignored in the
backward, max pooling padded with zeros, ...) and comparing the user's result with it under the
same tolerance rule as the check itself; the checks are in :mod:`refcheck.diagnosis`. Inputs
mutated in place (``CaseRun.mutated``) are reported on every compared tensor.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from .checks import checks_for
from .context import Check, Context
from .dtype import dtype_message, wrong_dtype
from .generic import mutation_message, state_between_calls

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..compare import CaseRun

__all__ = ["diagnose"]


def diagnose(run: CaseRun) -> dict[str, str]:
    """Map each failing compared tensor to the first known mistake that explains it.

    Parameters
    ----------
    run : CaseRun
        An executed case (inputs, the user's results, torch's references, mutations).

    Returns
    -------
    dict
        ``{"output" | "grad_input" | "grad_weight" | "grad_bias": message}`` for the tensors a known
        mistake explains; tensors without a recognised mistake are absent. Never raises: a
        diagnosis that cannot be made is simply left out.
    """
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # user code and transformed inputs may warn; none of it is news
            return _diagnose(run)
    except Exception:  # a diagnosis must never turn a failure into a crash
        try:
            return {tensor: mutation_message(run.mutated) for tensor in run.spec.compared} if run.mutated else {}
        except Exception:
            return {}


def _diagnose(run: CaseRun) -> dict[str, str]:
    context = Context(run)
    findings: dict[str, str] = {}
    checks = checks_for(context.layer)
    for tensor in context.failing():
        if context.result(tensor) is None:
            continue
        dtype_wrong = wrong_dtype(context, tensor)
        values_right = dtype_wrong and context.close(tensor, context.result(tensor))
        message = None if values_right else (_state_between_calls(context, tensor)
                                             or _first_finding(checks, context, tensor))
        if dtype_wrong:  # the dtype, and whether the values are right as well
            message = dtype_message(context, tensor, message)
        if message:
            findings[tensor] = message
    if run.mutated:
        # Mutation fails every tensor of the case; name it first, then any numeric finding.
        text = mutation_message(run.mutated)
        for tensor in context.compared:
            findings[tensor] = f"{text}; {findings[tensor]}" if tensor in findings else text
    return findings


def _state_between_calls(context: Context, tensor: str) -> str | None:
    try:
        return state_between_calls(context, tensor)
    except Exception:  # noqa: BLE001 - the user's code ran again: anything it raises means "not this"
        return None


def _first_finding(checks: list[tuple[tuple[str, ...], Check]], context: Context, tensor: str) -> str | None:
    """The message of the first check that explains the failing tensor, or None."""
    for tensors, check in checks:
        if tensor not in tensors:
            continue
        try:
            message = check(context, tensor)
        except Exception:  # this mistake does not apply here (odd shapes, a rejected re-run, ...)
            message = None
        if message:
            return message
    return None
