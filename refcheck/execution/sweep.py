"""Planning and running a sweep: which cases, for which implementation; the Python API ``check``."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..cases import DTYPES, Case, Coverage, expand, load_spaces
from ..report import cases_frame
from ..specs import LAYERS, UsageError
from .implementation import BUILTIN, Implementation, load_implementation
from .executors import Executor
from .runner import CheckOptions, SweepResult, run_cases

__all__ = ["Plan", "check", "layers_of", "parse_list", "plan_sweep", "run_plan"]


@dataclass
class Plan:
    """The cases to run, their coverage, and the layers the implementation lacks."""

    implementation: Implementation
    cases: list[Case]
    coverage: list[Coverage]
    not_implemented: list[str]

    def coverage_rows(self) -> list[dict[str, Any]]:
        return [{"layer": c.layer, "required": c.required, "held": c.covered, "infeasible": len(c.infeasible),
                 "missing": len(c.missing), "complete": c.complete,
                 "infeasible items": "; ".join(", ".join(f"{k}={v!r}" for k, v in item) for item in c.infeasible)}
                for c in self.coverage]


def parse_list(text: str | Sequence[str] | None, allowed: Sequence[str], option: str) -> list[str] | None:
    """'a,b' or ['a', 'b'] -> list, checked against the allowed values (UsageError names them)."""
    if text is None:
        return None
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise UsageError(f"{option}: unknown value {unknown[0]!r}; allowed: {', '.join(allowed)}")
    if not items:
        raise UsageError(f"{option}: give at least one value; allowed: {', '.join(allowed)}")
    return items


def plan_sweep(impl: str | None = None, layers: Sequence[str] | str | None = None, cases: str | Path | None = None,
               *, dtypes: Sequence[str] | str | None = None, quick: bool = False, seed: int = 0) -> Plan:
    """Load the implementation and the case spaces, and expand the cases to run.

    Without ``layers``, every layer the implementation provides is checked and the others are
    listed as not implemented; with ``layers``, those are checked (a missing one shows as skipped).
    """
    implementation = load_implementation(impl)
    chosen = parse_list(layers, tuple(LAYERS), "--layers")
    wanted_dtypes = parse_list(dtypes, DTYPES, "--dtype") or list(DTYPES)
    if chosen is None:
        chosen = [name for name in LAYERS if name in implementation.layers]
        not_implemented = [name for name in LAYERS if name not in implementation.layers]
    else:
        not_implemented = []
    spaces = load_spaces(cases, chosen)
    planned, coverage = [], []
    for space in spaces:
        dtype_values = space.params.get("dtype", ["float64"])
        kept = [d for d in dtype_values if d in wanted_dtypes]
        if not kept:
            continue
        if "dtype" in space.grid:
            space = dataclasses.replace(space, grid={**space.grid, "dtype": kept})
        elif "dtype" in space.vary:
            space = dataclasses.replace(space, vary={**space.vary, "dtype": kept})
        expanded, cov = expand(space, quick=quick, base_seed=seed)
        planned += expanded
        coverage.append(cov)
    return Plan(implementation, planned, coverage, not_implemented)


def check(impl: str | None = None, layers: Sequence[str] | str | None = None, cases: str | Path | None = None, *,
          dtypes: Sequence[str] | str | None = None, quick: bool = False, seed: int = 0, timeout: float = 60.0,
          workers: int = 2, executor: Executor | None = None, selfcheck: bool = True,
          forward_only: bool = False, allow_frameworks: bool = False, memory_limit: int | None = None,
          oracle_cache: str | None = None,
          on_case: Callable[[Case, list[dict[str, Any]]], None] | None = None) -> pd.DataFrame:
    """Check an implementation (module name or .py path; default the built-in layers).

    Returns a DataFrame with the same rows and columns as cases.csv. ``workers=0`` runs the cases
    in this process (no timeout, no isolation). ``oracle_cache``: a folder for torch's cached
    results (default: none for this API; the command line uses the user's cache folder).
    """
    plan = plan_sweep(impl, layers, cases, dtypes=dtypes, quick=quick, seed=seed)
    options = CheckOptions(workers=workers, timeout=timeout, selfcheck=selfcheck, forward_only=forward_only,
                           allow_frameworks=allow_frameworks, memory_limit=memory_limit, oracle_cache=oracle_cache)
    result = run_plan(plan, options, executor=executor, on_case=on_case)
    return cases_frame(result.records)


def run_plan(plan: Plan, options: CheckOptions | None = None, *, executor: Executor | None = None,
             on_case: Callable[[Case, list[dict[str, Any]]], None] | None = None) -> SweepResult:
    """Run a planned sweep through the runner."""
    reference = None if plan.implementation.name == BUILTIN else plan.implementation.name
    return run_cases(reference, plan.cases, options, executor=executor, on_case=on_case)


def layers_of(cases: Iterable[Case]) -> list[str]:
    """The layers of some cases, in first-seen order."""
    return list(dict.fromkeys(c.layer for c in cases))
