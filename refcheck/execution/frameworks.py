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

__all__ = ["FRAMEWORKS", "frameworks_imported_by", "frameworks_in_namespace", "frameworks_loaded"]

FRAMEWORKS = ("torch", "jax", "tensorflow", "autograd", "mxnet", "cupy")


def _root(name: str | None) -> str:
    return (name or "").split(".", 1)[0]


def frameworks_loaded() -> list[str]:
    """The frameworks imported in this process."""
    return [name for name in FRAMEWORKS if name in sys.modules]


def frameworks_in_namespace(module: ModuleType | None) -> list[str]:
    """The frameworks a module refers to by name: imported modules, functions or classes from them."""
    if module is None:
        return []
    found = set()
    for value in list(vars(module).values()):
        owner: Any = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        if isinstance(owner, str) and _root(owner) in FRAMEWORKS:
            found.add(_root(owner))
    return [name for name in FRAMEWORKS if name in found]


def frameworks_imported_by(module: ModuleType | None) -> list[str]:
    """The frameworks a module or any of its loaded submodules refers to (a package's modules included)."""
    if module is None:
        return []
    prefix = f"{module.__name__}."
    modules = [module] + [loaded for name, loaded in list(sys.modules.items())
                          if name.startswith(prefix) and isinstance(loaded, ModuleType)]
    found = {name for each in modules for name in frameworks_in_namespace(each)}
    return [name for name in FRAMEWORKS if name in found]
