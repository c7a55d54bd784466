"""torch's processes (the oracle), started before the code under test runs beside them.

An oracle process is shut to the user's other processes from its start-up (non-dumpable), but
not before it: one that started while the implementation's workers ran could have its pipes opened
through /proc in that moment. So the oracle is started, and waited for, before any worker runs the
user's code: before planning on a first run, else before the sweep's first task when the cache
lacks a case.
"""
from __future__ import annotations

from ..oracle import OracleCache
from .executors import Executor, ProcessExecutor

__all__ = ["start_oracle", "start_oracle_early"]


_SHUT_SECONDS = 60.0  # at most this long for a process to start (an interpreter and refcheck's imports)


def _ready() -> bool:
    return True


def start_oracle(workers: int) -> ProcessExecutor:
    """The oracle's processes, each shut to the other processes of the user (non-dumpable) before
    this returns, so that they start before anything of the user's code runs beside them; they
    go on loading torch meanwhile."""
    count = max(1, workers)
    executor = ProcessExecutor(count, None, kind="oracle")
    for _ in range(count):
        executor.submit(_ready)  # the pool starts its processes on its first task
    for _ in range(count):
        executor.shut.acquire(timeout=_SHUT_SECONDS)
    # Its processes from now on: one started later (a worker killed and replaced) starts beside the
    # user's code, and its results are refused (CaseChecker._reference).
    executor.first_pids = set(executor.worker_pids())
    return executor


def start_oracle_early(workers: int, cache_dir: str | None) -> Executor | None:
    """The oracle's processes (see start_oracle), started now when torch will surely be needed (no
    cache, or a cache with no result in it: a first run), before the sweep is planned; else None.
    The caller shuts the executor down."""
    if workers <= 0 or (cache_dir is not None and OracleCache(cache_dir).has_entries()):
        return None
    return start_oracle(workers)
