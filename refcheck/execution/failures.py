"""Error rows for cases that never reached a verdict: a worker that timed out or died, a pool that
gave up, a failure outside the user's code."""
from __future__ import annotations

import concurrent.futures
from typing import Any

from ..cases import Case
from ..compare import status_records
from .safe_channel import refused
from .worker import EXIT_ZERO_CODE

__all__ = ["failure_records", "pool_lost", "worker_died"]

Record = dict[str, Any]


def failure_records(case: Case, error: BaseException, timeout: float | None, note: str = "") -> list[Record]:
    """Error rows for a case whose worker timed out, died, or failed outside the user's code."""
    import pebble

    if isinstance(error, (concurrent.futures.TimeoutError, TimeoutError)):
        reason = f"timeout: the case did not finish within {timeout:g} s (the worker was stopped){note}"
    elif isinstance(error, pebble.ProcessExpired):
        reason = f"worker died: the process running the case exited with code {error.exitcode}"
        if error.exitcode == EXIT_ZERO_CODE:
            reason = "worker died: the process running the case exited with code 0 (the implementation called os._exit(0))"
        if error.exitcode and error.exitcode < 0:
            reason += f" (signal {-error.exitcode})"
        reason += note
    elif type(error).__name__ == "KilledWorker":  # a Dask worker died running it (crash or memory limit)
        reason = f"worker died: the Dask worker running the case died ({error}){note}"
    elif refused(error):
        reason = (f"refused: the worker running the case sent back something other than plain results "
                  f"({refused(error)}); nothing of it was run here")
    elif pool_lost(error):
        reason = f"worker died: a worker process ended while the case ran, twice ({error}){note}"
    else:
        reason = f"internal error: {type(error).__name__}: {error}"
    return status_records(case, "error", reason)


def pool_lost(error: BaseException | None) -> bool:
    """The process pool gave up after a worker died unaccounted for, abandoning every task in flight."""
    return error is not None and type(error).__name__ == "BrokenProcessPool"


def worker_died(error: BaseException | None) -> bool:
    """A worker process (or a Dask worker) died while it ran the task."""
    return error is not None and (type(error).__name__ in ("ProcessExpired", "KilledWorker"))
