"""Planning and running a sweep: which cases, for which implementation; the Python API ``check``."""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..adapters.capabilities import capabilities_of, unsupported_summary
from ..adapters.names import expected_names, layer_named, near_misses
from ..cases import ALL_SUPPORTED, DTYPES, Case, Coverage, expand, load_spaces
from ..cases.expansion_cache import expand_cached
from ..report import cases_frame
from ..report.stream import RecordStream
from ..specs import LAYERS, UsageError
from .implementation import BUILTIN, Implementation, load_implementation
from .executors import Executor
from .runner import CheckOptions, SweepResult, run_cases

__all__ = ["Plan", "check", "layers_of", "missing_layer_message", "parse_list", "plan_sweep", "run_plan"]


@dataclass
class Plan:
    """The cases to run, their coverage, and the layers the implementation lacks."""

    implementation: Implementation
    cases: list[Case]
    coverage: list[Coverage]
    not_implemented: list[str]
    unsupported: dict[str, str] = dataclasses.field(default_factory=dict)
    forward_only: bool = False
    outside: list[Case] = dataclasses.field(default_factory=list)

    def coverage_rows(self) -> list[dict[str, Any]]:
        """Coverage over the cases that run, with the configurations outside the supported space."""
        return [{"layer": c.layer, "required": c.required, "held": c.covered, "infeasible": len(c.infeasible),
                 "missing": len(c.missing), "complete": c.complete,
                 "infeasible items": "; ".join(", ".join(f"{k}={v!r}" for k, v in item) for item in c.infeasible),
                 "not supported": self.unsupported.get(c.layer, "")}
                for c in self.coverage]

    def implementation_rows(self) -> list[dict[str, str]]:
        """Which of the user's functions or classes was checked as which layer, and how."""
        return [{"layer": layer, "implementation": functions.description}
                for layer, functions in self.implementation.layers.items()
                if layer in {c.layer for c in self.cases}]


def parse_list(text: str | Sequence[str] | None, allowed: Sequence[str], option: str,
               suggest: Callable[[str], str | None] | None = None) -> list[str] | None:
    """'a,b' or ['a', 'b'] -> list, checked against the allowed values (UsageError names them, and
    the one ``suggest`` finds for an unknown value)."""
    if text is None:
        return None
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown:
        meant = suggest(unknown[0]) if suggest else None
        hint = f" (did you mean {meant!r}?)" if meant else ""
        raise UsageError(f"{option}: unknown value {unknown[0]!r}{hint}; allowed: {', '.join(allowed)}")
    if not items:
        raise UsageError(f"{option}: give at least one value; allowed: {', '.join(allowed)}")
    return items


def _defines(discovery: Any) -> str:
    return ", ".join(discovery.available) or "no functions or classes"


def missing_layer_message(implementation: Implementation, layer: str) -> str:
    """Why ``--layers`` names a layer the module lacks: what it has, and the near miss."""
    discovery = implementation.discovery
    message = f"--layers {layer}: {implementation.name} has no {layer} (it defines: {_defines(discovery)})"
    misses = near_misses(layer, discovery.available)
    if misses:
        message += "; " + "; ".join(f"{mine!r} looks like {theirs!r}" for mine, theirs in misses)
    rejected = [r for r in discovery.rejected if r.layer == layer]
    if rejected:
        message += "; " + "; ".join(f"{r.name} was not used: {r.reason}" for r in rejected)
    orphans = [o for o in discovery.orphans if o.startswith(f"{layer}_")]
    if orphans:
        message += "; " + "; ".join(orphans)
    if not misses and not rejected and not orphans:
        forward, backward, classes = expected_names(layer)
        named = f"a class such as {classes}" if classes else "a class named as in torch.nn"
        message += f"; expected {forward} and {backward}, or {named} (see `refcheck inspect`)"
    return message


def nothing_found_message(implementation: Implementation) -> str:
    """Why a module yields no layer at all: what it defines, and the names that look like misspellings."""
    discovery = implementation.discovery
    message = f"{implementation.name} has none of refcheck's layers (it defines: {_defines(discovery)})"
    expected = {name for layer in LAYERS for name in (f"{layer}_forward", f"{layer}_backward")}
    closest: dict[str, str] = {}  # each of the user's names, with the refcheck name closest to it
    for mine, theirs in (miss for layer in LAYERS for miss in near_misses(layer, discovery.available)):
        similarity = difflib.SequenceMatcher(None, mine, theirs).ratio()
        if mine not in expected and similarity > difflib.SequenceMatcher(None, mine, closest.get(mine, "")).ratio():
            closest[mine] = theirs
    misses = list(closest.items())
    if misses:
        message += "; " + "; ".join(f"{mine!r} looks like {theirs!r}" for mine, theirs in misses)
    rejected = "; ".join(f"{r.name} was not used as {r.layer}: {r.reason}" for r in discovery.rejected)
    if rejected:
        message += "; " + rejected
    return message + ("; name functions <layer>_forward / <layer>_backward or classes as torch.nn names them, "
                      "or map your names to layers in a refcheck.toml beside your code (README: \"When refcheck cannot guess\")")


def plan_sweep(impl: str | None = None, layers: Sequence[str] | str | None = None, cases: str | Path | None = None,
               *, dtypes: Sequence[str] | str | None = None, quick: bool = False, seed: int = 0,
               map_path: str | None = None, forward_only: bool = False,
               expansion_cache: str | Path | None = None) -> Plan:
    """Load the implementation and the case spaces, and expand the cases to run.

    Without ``layers``, every layer the implementation provides is checked and the others are
    listed as not implemented; a layer named in ``layers`` that the implementation lacks is a
    UsageError that says what the module has and which name looks like a misspelling.
    Cases are expanded inside what each layer's implementation supports; the configurations of
    the full sweep outside it are summarised in ``Plan.unsupported``. ``expansion_cache``: a folder
    where the expansions of whole spaces are kept for the next run (:mod:`refcheck.cases.expansion_cache`).
    """
    implementation = load_implementation(impl, map_path) if map_path else load_implementation(impl)
    chosen = parse_list(layers, tuple(LAYERS), "--layers", suggest=layer_named)
    wanted_dtypes = parse_list(dtypes, DTYPES, "--dtype") or list(DTYPES)
    if chosen is None:
        chosen = [name for name in LAYERS if name in implementation.layers]
        not_implemented = [name for name in LAYERS if name not in implementation.layers]
        if not chosen and impl is not None:
            raise UsageError(nothing_found_message(implementation))
    else:
        for layer in chosen:
            if layer not in implementation.layers:
                raise UsageError(missing_layer_message(implementation, layer))
        not_implemented = []
    spaces = load_spaces(cases, chosen)
    planned, coverage, unsupported, outside = [], [], {}, []
    for space in spaces:
        dtype_values = space.params.get("dtype", ["float64"])
        kept = [d for d in dtype_values if d in wanted_dtypes]
        if not kept:
            continue
        if "dtype" in space.grid:
            space = dataclasses.replace(space, grid={**space.grid, "dtype": kept})
        elif "dtype" in space.vary:
            space = dataclasses.replace(space, vary={**space.vary, "dtype": kept})
        functions = implementation.layers.get(space.layer)
        capabilities = ALL_SUPPORTED if functions is None else capabilities_of(functions)
        if capabilities is ALL_SUPPORTED:  # nothing is outside the supported space: one expansion
            expanded, cov = expand_cached(space, quick=quick, base_seed=seed, folder=expansion_cache)
        else:
            expanded, cov = expand(space, quick=quick, base_seed=seed, capabilities=capabilities)
            full, _ = expand_cached(space, quick=quick, base_seed=seed, folder=expansion_cache)
            known = {case.id for case in expanded}
            beyond = [case for case in full if case.id not in known]
            count, line = unsupported_summary(functions, beyond)
            if count:
                unsupported[space.layer] = line
            outside += beyond
        planned += expanded
        coverage.append(cov)
    return Plan(implementation, planned, coverage, not_implemented, unsupported, forward_only, outside)


def check(impl: str | None = None, layers: Sequence[str] | str | None = None, cases: str | Path | None = None, *,
          dtypes: Sequence[str] | str | None = None, quick: bool = False, seed: int = 0, timeout: float = 60.0,
          workers: int = 2, executor: Executor | None = None, selfcheck: bool = True,
          forward_only: bool = False, allow_frameworks: bool = False, memory_limit: int | None = None,
          oracle_cache: str | None = None, map_path: str | None = None,
          on_case: Callable[[Case, list[dict[str, Any]]], None] | None = None) -> pd.DataFrame:
    """Check an implementation (module name or .py path; default the built-in layers).

    Returns a DataFrame with the same rows and columns as cases.csv. ``workers=0`` runs the cases
    in this process (no timeout, no isolation). ``oracle_cache``: a folder for torch's cached
    results (default: none for this API; the command line uses the user's cache folder).
    """
    from .planning import plan_isolated  # imported here: planning runs this module's plan_sweep

    plan = plan_isolated(impl, layers, cases, dtypes=dtypes, quick=quick, seed=seed, map_path=map_path,
                         forward_only=forward_only, isolate=workers > 0 and executor is None)
    options = CheckOptions(workers=workers, timeout=timeout, selfcheck=selfcheck, forward_only=forward_only,
                           allow_frameworks=allow_frameworks, memory_limit=memory_limit, oracle_cache=oracle_cache)
    result = run_plan(plan, options, executor=executor, on_case=on_case)
    return cases_frame(result.records)


def run_plan(plan: Plan, options: CheckOptions | None = None, *, executor: Executor | None = None,
             on_case: Callable[[Case, list[dict[str, Any]]], None] | None = None,
             stream: RecordStream | None = None, oracle_executor: Executor | None = None) -> SweepResult:
    """Run a planned sweep through the runner (records to ``stream`` when given; torch in
    ``oracle_executor`` when given, e.g. started early by :func:`~.runner.start_oracle_early`)."""
    reference = None if plan.implementation.name == BUILTIN else plan.implementation.name
    options = dataclasses.replace(options or CheckOptions())
    options.forward_only = options.forward_only or plan.forward_only
    options.map_path = options.map_path or plan.implementation.map_path
    return run_cases(reference, plan.cases, options, executor=executor, on_case=on_case, stream=stream,
                     oracle_executor=oracle_executor)


def layers_of(cases: Iterable[Case]) -> list[str]:
    """The layers of some cases, in first-seen order."""
    return list(dict.fromkeys(c.layer for c in cases))
