"""Planning a sweep without loading the user's code into this process.

Discovery imports the user's module and calls its classes and functions on a probe case. In the
process that later holds torch's references (the comparison runs here), that would let import-time
code watch for them. ``plan_isolated`` therefore plans in an implementation worker (a process that
never holds a reference) and brings back a detached plan: the cases, the coverage and what each
layer was checked as, but no function of the user's. The built-in layers are planned here.
"""
from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass, field
from typing import Any

from ..specs import RefcheckError, UsageError
from .capture import capture_output
from .executors import ProcessExecutor
from .implementation import BUILTIN
from .sweep import Plan, plan_sweep

__all__ = ["DetachedImplementation", "LayerSummary", "plan_isolated"]

PLAN_TIMEOUT = 120.0
"""Seconds allowed for loading the implementation and planning (discovery calls the user's code)."""


@dataclass(frozen=True)
class LayerSummary:
    """What a layer was checked as, without the user's functions."""

    layer: str
    description: str
    origin: str = ""


@dataclass
class DetachedImplementation:
    """An implementation as the planning process saw it: name, layers (descriptions), mapping."""

    name: str
    layers: dict[str, LayerSummary] = field(default_factory=dict)
    map_path: str | None = None
    module: Any = None


def _detached(plan: Plan) -> Plan:
    implementation = plan.implementation
    layers = {name: LayerSummary(name, functions.description, functions.origin)
              for name, functions in implementation.layers.items()}
    summary = DetachedImplementation(implementation.name, layers, getattr(implementation, "map_path", None))
    return dataclasses.replace(plan, implementation=summary)


def _plan_in_worker(args: tuple, kwargs: dict) -> tuple[str, Any]:
    """Runs in the implementation worker: ("plan", detached plan) or ("usage", message)."""
    with capture_output():
        try:
            return "plan", _detached(plan_sweep(*args, **kwargs))
        except RefcheckError as error:
            return "usage", str(error)
        except BaseException as error:  # noqa: BLE001 - the user's module may raise or exit while loading
            impl = args[0] if args else kwargs.get("impl")
            return "usage", (f"--impl {impl!r}: loading it raised {type(error).__name__}: {error}\n"
                             + traceback.format_exc(limit=-3))


def plan_isolated(*args: Any, isolate: bool = True, **kwargs: Any) -> Plan:
    """:func:`plan_sweep` in an implementation worker (same arguments); in this process when
    ``isolate`` is false or the implementation is refcheck's own layers."""
    impl = args[0] if args else kwargs.get("impl")
    if not isolate or impl in (None, BUILTIN):
        return plan_sweep(*args, **kwargs)
    executor = ProcessExecutor(1, PLAN_TIMEOUT, kind="implementation")
    try:
        kind, value = executor.submit(_plan_in_worker, args, kwargs).result()
    except Exception as error:  # a hang or a crash while loading the user's module
        raise UsageError(f"--impl {impl!r}: loading and planning did not finish ({type(error).__name__}: "
                         f"{error or 'timed out after ' + str(int(PLAN_TIMEOUT)) + ' s'})") from None
    finally:
        executor.shutdown()
    if kind == "usage":
        raise UsageError(value)
    return value
