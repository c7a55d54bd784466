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
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["adopt_orphans", "descendants", "stop_leftovers"]

_PR_SET_CHILD_SUBREAPER = 36
_ROUNDS = 100  # of looking for descendants that appeared since the last look
_REAP_SECONDS = 2.0  # at most, for the killed processes to be gone


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
    # Stopped first, until no new one appears: a process that forks and lets its parent exit, again
    # and again, has a new pid each time (it stays a descendant: this process is its subreaper).
    stopped: list[int] = []
    for _ in range(_ROUNDS):
        fresh = [pid for pid in descendants() if pid not in spared and pid not in stopped]
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
    killed = []
    for pid in stopped:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    # Reaped as they die: a killed process whose parent was killed too is adopted here, a zombie,
    # a moment later (a kill is delivered asynchronously).
    waiting, deadline = set(stopped), time.monotonic() + _REAP_SECONDS
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            state = _state(pid)
            if state == "Z":
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            if state == "" or (state == "Z" and not Path(f"/proc/{pid}").exists()):
                waiting.discard(pid)
        if waiting:
            time.sleep(0.005)
    for pid in _zombie_children() - spared:  # those that exited between two looks, adopted here
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
    return killed


def _zombie_children() -> set[int]:
    """This process's children that have exited and wait to be reaped (a /proc scan: a zombie is
    not always listed among a task's children)."""
    me, found = str(os.getpid()), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] == "Z" and fields[1] == me:
                    found.add(int(entry.name))
    return found


def _state(pid: int) -> str:
    """A process's state letter (R, S, T, Z...), '' if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
