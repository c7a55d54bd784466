"""Executing cases: isolated, time-limited, in parallel, through a concurrent.futures-style executor.

The default executor is a pebble process pool: a case that hangs past its timeout has its worker
killed and replaced, a case whose worker dies (os._exit, a segfault in an extension) becomes an
``error`` row, and the sweep goes on. Any executor with ``submit(fn, *args) -> Future`` plugs in
(an in-process one for debugging, a dask client for a cluster).
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from ..cases import Case
from ..compare import status_records
from ..specs import UsageError
from .run_case import run_case

__all__ = ["Executor", "InlineExecutor", "ProcessExecutor", "SweepResult", "failure_records", "run_cases"]

Record = dict[str, Any]


class Executor(Protocol):
    """What the runner needs: concurrent.futures' submit, and shutdown."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


class InlineExecutor:
    """Runs each task in this process when submitted: no isolation, no timeout (for debugging)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - delivered through the future, like any executor
            if isinstance(error, KeyboardInterrupt):
                raise
            future.set_exception(error)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None


_PRELOAD = ["numpy", "torch", "torch.nn.functional", "refcheck.oracle.torch_reference", "refcheck.execution.run_case", "refcheck.layers"]


def _prepare_worker() -> None:
    """Worker start-up: one thread per process (the pool is the parallelism)."""
    from ..oracle import use_one_thread

    use_one_thread()


def _context() -> multiprocessing.context.BaseContext:
    """A forkserver that has imported torch once: workers (and replacements of dead or hung ones)
    are forked from it in milliseconds. Not plain fork: forking a process that has run torch or
    OpenMP code can deadlock the child."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


class ProcessExecutor:
    """A pebble process pool with a per-task timeout; workers are replaced when they die or hang."""

    def __init__(self, workers: int, timeout: float | None) -> None:
        import pebble

        if getattr(sys.modules.get("__main__"), "__name__", "") == "__mp_main__":
            # We are inside a worker start-up that re-imports the user's script: starting another
            # pool here would recurse without end.
            raise UsageError("refcheck was asked to start worker processes while a worker was importing your "
                             "script; put the call under `if __name__ == \"__main__\":`")
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")  # inherited by the workers, not this process
        self.timeout = timeout
        self.pool = pebble.ProcessPool(max_workers=workers, initializer=_prepare_worker, context=_context())

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self.pool.schedule(fn, args=args, kwargs=kwargs, timeout=self.timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            self.pool.stop()
        else:
            self.pool.close()
        self.pool.join()


@dataclass
class SweepResult:
    """Records in case order; ``interrupted`` when Ctrl-C stopped the sweep (records hold what finished)."""

    records: list[Record]
    interrupted: bool = False
    finished: int = 0
    total: int = 0


def failure_records(case: Case, error: BaseException, timeout: float | None) -> list[Record]:
    """Error rows for a case whose worker timed out, died, or failed outside the user's code."""
    import pebble

    if isinstance(error, (concurrent.futures.TimeoutError, TimeoutError)):
        reason = f"timeout: the case did not finish within {timeout:g} s (the worker was stopped)"
    elif isinstance(error, pebble.ProcessExpired):
        reason = f"worker died: the process running the case exited with code {error.exitcode}"
        if error.exitcode and error.exitcode < 0:
            reason += f" (signal {-error.exitcode})"
    elif isinstance(error, KeyboardInterrupt):
        reason = "error: the implementation raised KeyboardInterrupt"
    else:
        reason = f"internal error: {type(error).__name__}: {error}"
    return status_records(case, "error", reason)


def run_cases(reference: str | None, cases: Sequence[Case], *, workers: int = 2, timeout: float | None = 60.0,
              executor: Executor | None = None, on_case: Callable[[Case, list[Record]], None] | None = None,
              selfcheck: bool = True, diagnose: bool = True, **options: Any) -> SweepResult:
    """Run every case; each finished case is reported to ``on_case`` as soon as it completes.

    Ctrl-C stops the workers and returns what has finished, with ``interrupted=True``.
    ``options`` (``forward_only``, ``map_path``) are passed on to :func:`run_case`.
    """
    own = executor is None
    if executor is None:
        executor = ProcessExecutor(workers, timeout) if workers > 0 else InlineExecutor()
    by_case: dict[str, list[Record]] = {}
    futures: dict[Future, Case] = {}
    interrupted = False
    def collect(future: Future) -> None:
        case = futures[future]
        try:
            records = future.result()
        except (Exception, KeyboardInterrupt) as error:
            # Timeouts, dead workers, or the user's code raising KeyboardInterrupt inside a worker
            # (a real Ctrl-C arrives here in the main loop, not through a finished future).
            records = failure_records(case, error, timeout)
        by_case[case.id] = records
        if on_case is not None:
            on_case(case, records)

    try:
        for case in cases:
            future = executor.submit(run_case, reference, case, selfcheck, diagnose, **options)
            futures[future] = case
            if future.done():  # an in-process executor ran it inside submit: keep it before a Ctrl-C can
                collect(future)
        for future in concurrent.futures.as_completed([f for f, c in futures.items() if c.id not in by_case]):
            collect(future)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if own:
            executor.shutdown(wait=not interrupted, cancel_futures=interrupted)
    ordered = [record for case in cases if case.id in by_case for record in by_case[case.id]]
    return SweepResult(ordered, interrupted, len(by_case), len(cases))

