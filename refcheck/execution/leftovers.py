"""Processes the code under test leaves behind: found and stopped before the reports are written.

A worker's code can start a process of its own and detach it (a double fork, ``setsid``), which
then outlives the run: it could rewrite the reports once they are written, or keep the caller's
standard output open so that a pipeline (``refcheck run | tee``) never ends. ``refcheck run``
makes itself the subreaper of its descendants (Linux): such a process is reparented to it rather
than to init, so it is still a descendant when the sweep ends, and :func:`stop_leftovers` ends it.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterable
from pathlib import Path

__all__ = ["adopt_orphans", "descendants", "stop_leftovers"]

_PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> bool:
    """Make this process the subreaper of its descendants (False where that is not possible)."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (default: this one), parents before their children."""
    order, todo = [], _children(os.getpid() if pid is None else pid)
    while todo:
        child = todo.pop(0)
        if child not in order:
            order.append(child)
            todo += _children(child)
    return order


def _own_helpers() -> set[int]:
    """multiprocessing's resource tracker and fork server, and the processes this one started and
    that still run (torch's, the figures'): refcheck's, never the user's code. The user's code runs
    in implementation workers, which are shut down before this is asked; what they detach is
    adopted here without having been started here."""
    helpers = {child.pid for child in multiprocessing.active_children() if child.pid is not None}
    tracker = getattr(getattr(multiprocessing, "resource_tracker", None), "_resource_tracker", None)
    server = getattr(getattr(multiprocessing, "forkserver", None), "_forkserver", None)
    for pid in (getattr(tracker, "_pid", None), getattr(server, "_forkserver_pid", None)):
        if isinstance(pid, int):
            helpers.add(pid)
    return helpers


def stop_leftovers(keep: Iterable[int] = ()) -> list[int]:
    """Kill every descendant of this process but ``keep`` and refcheck's own processes (their
    children are not spared); reap those that were its children. Returns the pids killed."""
    import multiprocessing.forkserver  # noqa: F401 - so that _own_helpers can read their pids
    import multiprocessing.resource_tracker  # noqa: F401

    spared = set(keep) | _own_helpers()
    killed = []
    for pid in descendants():
        if pid in spared:
            continue
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    for pid in killed:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
    return killed
