"""Capturing what the implementation prints: stdout and stderr at the file-descriptor level.

Everything the user's code writes (Python prints, C extensions, subprocesses) goes to a temporary
file instead of the console; only a bounded excerpt (the first and last ``limit`` bytes) is kept,
so a flood of output can neither blow up a CI log nor the report.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Captured", "capture_output", "excerpt"]

CAPTURE_LIMIT = 4096
"""Bytes kept from the start and from the end of each stream."""


@dataclass
class Captured:
    """What one call printed (excerpts; ``*_bytes`` is the full size)."""

    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0


def excerpt(data: bytes, limit: int = CAPTURE_LIMIT) -> str:
    """The first and last ``limit`` bytes of ``data`` as text, with the size of what was left out."""
    if len(data) <= 2 * limit:
        return data.decode("utf-8", "replace")
    left_out = len(data) - 2 * limit
    return (data[:limit].decode("utf-8", "replace") + f"\n[... {left_out} bytes left out ...]\n"
            + data[-limit:].decode("utf-8", "replace"))


def _read_back(handle, limit: int) -> tuple[str, int]:
    size = handle.seek(0, os.SEEK_END)
    if size <= 2 * limit:
        handle.seek(0)
        return excerpt(handle.read(), limit), size
    handle.seek(0)
    head = handle.read(limit)
    handle.seek(size - limit)
    tail = handle.read(limit)
    text = (head.decode("utf-8", "replace") + f"\n[... {size - 2 * limit} bytes left out ...]\n"
            + tail.decode("utf-8", "replace"))
    return text, size


# Pairs of temporary files that earlier captures used, emptied: a worker captures every case, and
# creating two files per case costs more than many a case itself.
_SPARE: list[list[Any]] = []


@atexit.register
def _close_spares() -> None:
    while _SPARE:
        for handle in _SPARE.pop():
            with contextlib.suppress(Exception):
                handle.close()


def _emptied(files: list[Any]) -> bool:
    try:
        for handle in files:
            handle.seek(0)
            handle.truncate()
        return True
    except (OSError, ValueError):  # the user's code closed or broke one: start afresh next time
        return False


@contextlib.contextmanager
def capture_output(limit: int = CAPTURE_LIMIT) -> Iterator[Captured]:
    """Redirect fds 1 and 2 (and sys.stdout/sys.stderr) to temporary files for the block.

    The excerpts are filled in when the block ends, whatever it raised.
    """
    captured = Captured()
    saved = []
    files = _SPARE.pop() if _SPARE else [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    streams = (sys.stdout, sys.stderr)
    try:
        for stream, fd, handle in zip(streams, (1, 2), files):
            with contextlib.suppress(Exception):
                stream.flush()
            saved.append(os.dup(fd))
            os.dup2(handle.fileno(), fd)
        yield captured
    finally:
        for stream in streams:
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, original in zip((1, 2), saved):
            os.dup2(original, fd)
            os.close(original)
        captured.stdout, captured.stdout_bytes = _read_back(files[0], limit)
        captured.stderr, captured.stderr_bytes = _read_back(files[1], limit)
        if _emptied(files):
            _SPARE.append(files)
        else:
            for handle in files:
                with contextlib.suppress(Exception):
                    handle.close()
