"""Implementation tasks on a Dask distributed cluster, behind the same executor interface as the pool.

``DaskExecutor(address)`` connects to a scheduler (``tcp://host:8786``) or, for ``"local"``, starts
a scheduler and single-threaded workers in processes of their own on this machine. Only the
implementation's tasks go there; torch's reference is still computed by the parent's trusted
oracle pool (or read from its cache), so a Dask worker never holds a reference.

Each Dask worker process keeps its own implementation pool (:class:`ProcessExecutor`, one process
per worker thread, forked from a server without torch) and runs every task there, so the pool's
guarantees hold on the cluster unchanged:

- isolation: the user's code runs in a child of the Dask worker, never in the worker itself or here;
- timeouts: a task past its timeout has its child killed and replaced, and fails here with
  ``TimeoutError`` (the Dask worker stays up);
- dead workers: a child that dies (``os._exit``, a segfault) fails the task with pebble's
  ``ProcessExpired`` and its exit code, as in the local pool: an error row saying the worker died.
  Only that case is affected; a Dask worker that dies itself fails its task with ``KilledWorker``;
- memory limits: ``--memory-limit`` is set in each child (the default is half of this machine's
  memory shared among the workers).

The Dask workers need refcheck, and the implementation at the same path, on their machines, and
must be allowed to start processes: start them with ``DASK_DISTRIBUTED__WORKER__DAEMON=False``.
dask and distributed are the optional extra ``refcheck[dask]``.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from ..specs import UsageError

__all__ = ["DaskExecutor", "in_dask_task"]


_POOL: Any = None


def in_dask_task(fn: Callable[..., Any], args: tuple, kwargs: dict, timeout: float | None,
                 memory_limit: int | None) -> tuple:
    """Run a task in this Dask worker's own implementation pool; ("ok", result) or what stopped it."""
    import pebble

    from .executors import ProcessExecutor

    global _POOL
    if _POOL is None:
        from distributed import get_worker

        _POOL = ProcessExecutor(max(1, get_worker().state.nthreads), None, kind="implementation",
                                memory_limit=memory_limit, nested=True)
    try:
        return ("ok", _POOL.submit(fn, *args, timeout=timeout, **kwargs).result())
    except FutureTimeout:
        return ("timeout",)
    except pebble.ProcessExpired as error:  # plain values back: the exception itself does not pickle
        return ("expired", str(error), error.exitcode, error.pid)


def _local_cluster(workers: int) -> Any:
    """A scheduler and ``workers`` single-threaded workers, each in a process of its own.

    Not a LocalCluster, whose scheduler runs in the process that starts it: any task can reach
    its scheduler (a Dask worker is a client of it) and run code there, which here would be
    refcheck's own process, where the comparison and the reports are made. The workers start
    their own pools of children, so their processes must not be daemons.
    """
    import os

    from distributed.deploy.subprocess import SubprocessCluster

    key = "DASK_DISTRIBUTED__WORKER__DAEMON"
    before = os.environ.get(key)
    os.environ[key] = "False"  # read by the worker processes as they start
    try:
        return SubprocessCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


class DaskExecutor:
    """submit(fn, *args, timeout=None, **kwargs) -> concurrent.futures.Future, on a Dask cluster."""

    def __init__(self, address: str, timeout: float | None = None, *, workers: int = 2,
                 memory_limit: int | None = None) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--dask needs dask and distributed: pip install 'refcheck[dask]'") from None
        self.timeout = timeout
        self.cluster = None
        if address == "local":
            self.cluster = _local_cluster(max(1, workers))
            self.client = Client(self.cluster, set_as_default=False)
        else:
            try:
                self.client = Client(address, timeout="10s", set_as_default=False)
            except OSError as error:
                raise UsageError(f"--dask {address}: cannot reach the scheduler ({error})") from None
            self.client.wait_for_workers(1, timeout=60)
        threads = sum(info.get("nthreads", 1) for info in self.client.scheduler_info()["workers"].values())
        self.capacity = max(1, threads)  # tasks the cluster runs at once
        self.memory_limit = memory_limit

    def submit(self, fn: Callable[..., Any], /, *args: Any, timeout: float | None = None, **kwargs: Any) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()
        limit = timeout if timeout is not None else self.timeout
        remote = self.client.submit(in_dask_task, fn, args, kwargs, limit, self.memory_limit, pure=False)

        def deliver(done: Any) -> None:
            try:
                outcome = done.result()
            except BaseException as error:  # noqa: BLE001 - the task's own error, or a lost worker
                future.set_exception(error)
                return
            if outcome[0] == "ok":
                future.set_result(outcome[1])
            elif outcome[0] == "timeout":
                future.set_exception(FutureTimeout(f"the task did not finish within {limit:g} s"))
            else:
                import pebble

                future.set_exception(pebble.ProcessExpired(outcome[1], code=outcome[2], pid=outcome[3]))

        remote.add_done_callback(deliver)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
