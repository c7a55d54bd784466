"""The arrays of one case: what the implementation returned and torch's float64 reference.

Used by ``refcheck show`` (and the failure figures of ``refcheck run``) to draw where in a tensor
a case goes wrong. The implementation runs in its own worker process, as in a sweep; torch runs
here, after it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cases import Case
from ..specs import UsageError
from .executors import Executor, ProcessExecutor
from .worker import run_implementation

__all__ = ["CaseDidNotRun", "case_arrays"]


class CaseDidNotRun(RuntimeError):
    """The implementation's forward or backward raised, timed out or ended its worker on the case."""

    def __init__(self, reason: str, traceback: str = "") -> None:
        super().__init__(reason)
        self.reason, self.traceback = reason, traceback


def case_arrays(impl_reference: str | None, case: Case, *, executor: Executor | None = None,
                map_path: str | None = None, timeout: float = 60.0) -> tuple[dict[str, Any], dict[str, np.ndarray | None]]:
    """Run one case: ``(results, reference)``, both keyed ``output``, ``grad_<tensor>``.

    ``executor``: an implementation executor to reuse (default: a one-worker pool for this call).
    A layer the implementation lacks is a UsageError; a case that did not run is :class:`CaseDidNotRun`.
    """
    from ..oracle import compute_reference  # torch, on this (trusted) side only

    own = executor is None
    executor = executor or ProcessExecutor(1, timeout, kind="implementation")
    try:
        raw = executor.submit(run_implementation, impl_reference, case, selfcheck=False, map_path=map_path,
                              timeout=timeout).result()
    finally:
        if own:
            executor.shutdown()
    if raw["status"] == "skipped" and raw["reason"].startswith("not implemented"):
        raise UsageError(raw["reason"].removeprefix("not implemented: "))
    if raw["status"] != "ran":
        raise CaseDidNotRun(raw["reason"], raw.get("traceback", ""))
    reference, _ = compute_reference(case)
    return raw["results"], reference
