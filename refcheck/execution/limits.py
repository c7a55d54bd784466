"""Memory limits for the implementation's worker processes.

``--memory-limit 512MB`` caps how much more address space a worker may take than it had when it
started, so a runaway allocation becomes a MemoryError (an error row naming the limit) instead of
taking the machine down. The default shares the machine's memory among the workers.
"""
from __future__ import annotations

import os
import re

__all__ = ["OUTPUT_FILE_LIMIT", "default_memory_limit", "format_size", "parse_size", "set_file_size_limit",
           "set_memory_limit"]

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}


def parse_size(text: str) -> int:
    """'512MB', '2GB', '1.5g', '1048576' -> bytes; ValueError with the accepted forms otherwise."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"expected a size such as 512MB or 2GB, got {text!r}")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= 0:
        raise ValueError(f"expected a positive size, got {text!r}")
    return size


def format_size(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} B"


def _machine_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


def default_memory_limit(workers: int) -> int:
    """Half of the machine's memory shared among the workers (at least 256 MB each)."""
    return max(256 * 1024**2, _machine_memory() // (2 * max(1, workers)))


def _address_space() -> int:
    """This process's current virtual size in bytes (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def set_memory_limit(limit: int) -> None:
    """Allow this process ``limit`` bytes of address space beyond what it holds now. The hard limit
    too: the code under test, running in this process, cannot raise the limit again."""
    import resource

    allowed = _address_space() + limit
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        allowed = min(allowed, hard)
    resource.setrlimit(resource.RLIMIT_AS, (allowed, allowed))


OUTPUT_FILE_LIMIT = 256 * 1024 * 1024
"""The largest file a worker may write (its captured output among them): a flood of output stops
there instead of filling the disk."""


def set_file_size_limit(limit: int = OUTPUT_FILE_LIMIT) -> None:
    """Files this process writes stop growing at ``limit`` bytes (writes past it fail with EFBIG
    rather than killing the process), soft and hard."""
    import resource
    import signal

    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
