"""Where tasks run: concurrent.futures-style executors with a per-task timeout.

- :class:`InlineExecutor`: in this process, when submitted (debugging; no isolation, no timeout);
- :class:`ProcessExecutor`: a pebble process pool; a task past its timeout has its worker killed
  and replaced, a worker that dies becomes an error, and a pool that pebble gives up on (a worker
  dead with no task known to be running there) is replaced by a new one. Two kinds of pool: ``implementation``
  workers (forked from a server that has loaded numpy only, never torch; one thread; SIGINT
  ignored; a memory limit) and trusted ``oracle`` workers (torch loaded once).

Anything with ``submit(fn, *args, timeout=None, **kwargs) -> Future`` and ``shutdown`` plugs in.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from ..specs import UsageError
from .safe_channel import restrict_results

__all__ = ["Executor", "InlineExecutor", "ProcessExecutor"]

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class Executor(Protocol):
    """What the runner needs: submit with a timeout, and shutdown."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, timeout: float | None = None, **kwargs: Any) -> Future: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


class InlineExecutor:
    """Runs each task in this process when submitted: no isolation, no timeout (for debugging)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, timeout: float | None = None, **kwargs: Any) -> Future:
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


def _implementation_worker_start(memory_limit: int | None) -> None:
    from .limits import set_file_size_limit, set_memory_limit
    from .worker import mark_worker

    mark_worker()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is refcheck's to handle, not the user's code's
    _close_helper_pipes()
    set_file_size_limit()
    if memory_limit:
        set_memory_limit(memory_limit)


def _close_helper_pipes() -> None:
    """Close this worker's ends of the pipes to multiprocessing's helper processes (the fork
    server, the resource tracker), which the user's code has no use for: bytes of its own written
    there killed the fork server (no worker could be started again: the run hung) and had the
    resource tracker print them on the console."""
    import multiprocessing.forkserver as forkserver
    import multiprocessing.resource_tracker as resource_tracker

    for holder, name in ((forkserver._forkserver, "_forkserver_alive_fd"), (resource_tracker._resource_tracker, "_fd")):
        fd = getattr(holder, name, None)
        if isinstance(fd, int):
            with contextlib.suppress(OSError):
                os.close(fd)
            setattr(holder, name, None)


def _oracle_worker_start(shut: Any = None) -> None:
    from .safe_channel import shut_to_workers

    # First of all: the implementation's workers, same user, must not open this process's pipes
    # through /proc (and write a message of their own to either end). ``shut`` hears of it.
    shut_to_workers()
    if shut is not None:
        shut.release()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from ..oracle import oracle_worker_start

    oracle_worker_start()


ORACLE_TIMEOUT = 300.0
"""Seconds an oracle task may take (torch on a chunk of cases takes well under one): a stopped or
hung oracle process becomes error rows rather than a run that never ends."""


def _guard_against_recursion() -> None:
    if getattr(sys.modules.get("__main__"), "__name__", "") == "__mp_main__":
        # We are inside a worker start-up that re-imports the user's script: starting another
        # pool here would recurse without end.
        raise UsageError("refcheck was asked to start worker processes while a worker was importing your "
                         "script; put the call under `if __name__ == \"__main__\":`")


def _broken(pool: Any) -> bool:
    """Whether a pebble pool has given up (its status ERROR: it schedules nothing more)."""
    status = getattr(getattr(pool, "_context", None), "status", None)
    return getattr(status, "name", "") == "ERROR"


def _forkserver() -> multiprocessing.context.BaseContext:
    """Implementation workers fork from a server that loaded numpy and the worker module only (never
    torch), so a replacement for a dead or hung worker starts in milliseconds. Not plain fork:
    forking a process that has run OpenMP code can deadlock the child."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["numpy", "refcheck.execution.worker"])
    return context


class ProcessExecutor:
    """A pebble process pool with per-task timeouts; workers are replaced when they die or hang.

    kind: "implementation" (untrusted, no torch) or "oracle" (trusted, torch). ``nested``: a pool
    started inside another executor's worker (a Dask worker), whose ``__main__`` is that worker's own.
    """

    def __init__(self, workers: int, timeout: float | None = None, *, kind: str = "implementation",
                 memory_limit: int | None = None, nested: bool = False) -> None:
        import pebble

        if not nested:
            _guard_against_recursion()
        for variable in _THREAD_VARIABLES:
            os.environ.setdefault(variable, "1")  # inherited by the workers, not this process
        self.timeout = timeout
        if kind == "implementation":
            # The user's code runs there: its messages are read without running anything of theirs.
            self._new_pool = lambda: restrict_results(pebble.ProcessPool(
                max_workers=workers, initializer=_implementation_worker_start, initargs=(memory_limit,),
                context=_forkserver()))
        elif kind == "oracle":
            # spawn: the forkserver must never hold torch, the oracle's workers always do. Their
            # messages are read as the implementation's are: a message written into their pipes
            # by another process must not run anything here.
            self.timeout = ORACLE_TIMEOUT if timeout is None else timeout
            spawn = multiprocessing.get_context("spawn")
            self.shut = spawn.Semaphore(0)  # released by each worker once it is shut to other processes
            self._new_pool = lambda: restrict_results(pebble.ProcessPool(
                max_workers=workers, initializer=_oracle_worker_start, initargs=(self.shut,), context=spawn))
        else:
            raise ValueError(f"unknown executor kind {kind!r}")
        self.pool = self._new_pool()
        self._futures: list[Future] = []  # of the current pool, not yet done
        self.restarts = 0
        self.first_pids: set[int] | None = None  # see replaced()

    def submit(self, fn: Callable[..., Any], /, *args: Any, timeout: float | None = None, **kwargs: Any) -> Future:
        timeout = timeout if timeout is not None else self.timeout
        try:
            future = self.pool.schedule(fn, args=args, kwargs=kwargs, timeout=timeout)
        except RuntimeError:
            if not _broken(self.pool):
                raise
            self._replace_broken_pool()
            future = self.pool.schedule(fn, args=args, kwargs=kwargs, timeout=timeout)
        self._futures = [f for f in self._futures if not f.done()] + [future]
        return future

    def reap_broken(self) -> None:
        """If the pool has given up, fail what it still holds and start a new one (see below); the
        runner calls this while it waits, since a pool that gave up may never answer again."""
        if _broken(self.pool):
            self._replace_broken_pool()

    def _replace_broken_pool(self) -> None:
        # pebble gives up on the whole pool when a worker dies while it knows of no task running there
        # (idle, or before its task's start reached this process), or when a message from a worker
        # cannot be read, and abandons every task in flight (their futures raise BrokenProcessPool;
        # the runner runs those cases again). Tasks it had queued but not yet handed out, or handed
        # out after it gave up, are never answered: they fail here the same way. A new pool.
        from concurrent.futures.process import BrokenProcessPool

        broken, self.pool = self.pool, self._new_pool()
        self.restarts += 1
        broken.stop()
        for future in self._futures:
            if not future.done():
                try:
                    future.set_exception(BrokenProcessPool("the pool gave up before this task was answered"))
                except Exception:  # noqa: BLE001, S110 - answered meanwhile
                    pass
        self._futures = []
        try:
            broken.join(timeout=10)
        except TimeoutError:  # its threads end on their own; the sweep does not wait for them
            pass

    def replaced(self) -> bool:
        """Whether the pool started processes other than those it had when ``first_pids`` was taken
        (a worker that died was replaced, or the pool was)."""
        first = self.first_pids
        return first is not None and (self.restarts > 0 or not set(self.worker_pids()) <= first)

    def worker_pids(self) -> list[int]:
        """The pool's worker processes now (pebble's own record of them; none when it has none)."""
        manager = getattr(getattr(self.pool, "_pool_manager", None), "worker_manager", None)
        return list(getattr(manager, "workers", {}) or {})

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            self.pool.stop()
        else:
            self.pool.close()
        self.pool.join()
