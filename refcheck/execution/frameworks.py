"""Detecting an implementation that calls a deep-learning framework instead of computing itself.

refcheck checks from-scratch numpy code: an implementation that imports torch (or jax,
tensorflow, autograd, mxnet, cupy) would pass by calling the reference. In a worker process
(which never imports torch itself) any framework in ``sys.modules`` came from the user's code;
the module's own namespace is scanned too, so in-process runs detect it as well.
"""
from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

__all__ = ["FRAMEWORKS", "REFERENCE_LAYERS", "MappedFrameworks", "frameworks_imported_by", "frameworks_in_namespace",
           "frameworks_loaded", "frameworks_mapped"]

FRAMEWORKS = ("torch", "jax", "tensorflow", "autograd", "mxnet", "cupy")
# refcheck's own reference layers: code that calls them is not from scratch either.
REFERENCE_LAYERS = "refcheck.layers"


def _root(name: str | None) -> str:
    return (name or "").split(".", 1)[0]


def frameworks_loaded() -> list[str]:
    """The frameworks imported in this process (refcheck's own layers included: a worker running
    someone's code never imports them itself)."""
    return [name for name in FRAMEWORKS if name in sys.modules] + \
        ([REFERENCE_LAYERS] if any(_is_reference(name) for name in list(sys.modules)) else [])


def _is_reference(name: str) -> bool:
    return name == REFERENCE_LAYERS or name.startswith(REFERENCE_LAYERS + ".")


# Shared libraries that only a framework maps into a process (the user's worker never maps one of
# its own accord): seen from outside the process, whatever its code did to refcheck's checks there.
_LIBRARIES = {"torch": ("libtorch", "/torch/lib/"), "tensorflow": ("libtensorflow", "/tensorflow/"),
              "jax": ("/jaxlib/",), "mxnet": ("libmxnet",), "cupy": ("/cupy/", "/cupy_backends/")}


def frameworks_mapped(pid: int) -> set[str]:
    """The frameworks whose libraries process ``pid`` has mapped (Linux's /proc/<pid>/maps; an
    empty set where it cannot be read, e.g. the process has ended)."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
            text = maps.read()
    except OSError:
        return set()
    return {name for name, marks in _LIBRARIES.items() if any(mark in text for mark in marks)}


# A process's address space grows by hundreds of MiB when a framework loads (torch: about 600 MiB
# of virtual memory); a smaller growth is not worth reading its memory map again.
_RESCAN_PAGES = (64 << 20) // 4096


def _pages(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class MappedFrameworks:
    """The frameworks seen mapped in a set of processes so far. Reading a memory map costs about
    0.2 ms, its size (/proc/<pid>/statm) 0.01 ms: a process's map is read when it is first seen
    and again only after its address space grew by 64 MiB or more."""

    def __init__(self) -> None:
        self.found: set[str] = set()
        self._pages: dict[int, int] = {}

    def look(self, pids: list[int]) -> set[str]:
        for pid in pids:
            pages = _pages(pid)
            if pages is None:
                continue
            if pid not in self._pages or pages > self._pages[pid] + _RESCAN_PAGES:
                self._pages[pid] = pages
                self.found |= frameworks_mapped(pid)
        return self.found


# The last scan of each module: the identities of its values, and what they referred to. A case
# re-scans only when a value of the module changed (the scan itself walks every value). The values
# are kept with it, so that no identity can be reused by a new object while it is remembered.
_SCANNED: dict[int, tuple[list[Any], tuple[int, ...], list[str]]] = {}


def frameworks_in_namespace(module: ModuleType | None) -> list[str]:
    """The frameworks a module refers to by name: imported modules, functions or classes from them."""
    if module is None:
        return []
    values = list(vars(module).values())
    identities = tuple(map(id, values))
    last = _SCANNED.get(id(module))
    if last is not None and last[1] == identities:
        return list(last[2])
    found = set()
    for value in values:
        owner: Any = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        if isinstance(owner, str) and _root(owner) in FRAMEWORKS:
            found.add(_root(owner))
        elif isinstance(owner, str) and _is_reference(owner):
            found.add(REFERENCE_LAYERS)
    result = [name for name in (*FRAMEWORKS, REFERENCE_LAYERS) if name in found]
    _SCANNED[id(module)] = (values, identities, result)
    return list(result)


def frameworks_imported_by(module: ModuleType | None) -> list[str]:
    """The frameworks a module or any of its loaded submodules refers to (a package's modules included)."""
    if module is None:
        return []
    prefix = f"{module.__name__}."
    modules = [module] + [loaded for name, loaded in list(sys.modules.items())
                          if name.startswith(prefix) and isinstance(loaded, ModuleType)]
    found = {name for each in modules for name in frameworks_in_namespace(each)}
    return [name for name in (*FRAMEWORKS, REFERENCE_LAYERS) if name in found]
