"""Planning a sweep without loading the user's code into this process.

Discovery imports the user's module and calls its classes and functions on a probe case. In the
process that later holds torch's references (the comparison runs here), that would let import-time
code watch for them. ``plan_isolated`` therefore plans in an implementation worker (a process that
never holds a reference) and brings back a detached plan: the cases, the coverage and what each
layer was checked as, but no function of the user's. The built-in layers are planned here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cases import Case, case_seed, load_spaces
from ..cases.case import dtype_tag, id_part
from ..cases.inputs import VALUE_KINDS
from ..cases.shapes_seqloss import SEQLOSS_LAYERS
from ..specs import LAYERS, RefcheckError, UsageError
from .capture import capture_output
from .executors import ProcessExecutor
from .implementation import BUILTIN, implementation_reference
from .sweep import Plan, parse_list, plan_sweep

__all__ = ["DetachedImplementation", "LayerSummary", "no_cases_message", "plan_isolated"]

PLAN_TIMEOUT = 120.0
"""Seconds allowed for loading the implementation and planning (discovery calls the user's code)."""


@dataclass(frozen=True)
class LayerSummary:
    """What a layer was checked as, without the user's functions."""

    layer: str
    description: str
    origin: str = ""
    # What its forward takes and the values its code fixes (see LayerFunctions): what `refcheck
    # fuzz` draws from, rebuilt here (refcheck.adapters.capabilities.value_check).
    accepted: frozenset[str] | None = None
    fixed: dict[str, Any] = field(default_factory=dict)


@dataclass
class DetachedImplementation:
    """An implementation as the planning process saw it: name, layers (descriptions), mapping."""

    name: str
    layers: dict[str, LayerSummary] = field(default_factory=dict)
    map_path: str | None = None
    module: Any = None


def _detached(plan: Plan) -> Plan:
    implementation = plan.implementation
    layers = {name: LayerSummary(name, functions.description, functions.origin, functions.accepted,
                                 dict(functions.fixed))
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
    arguments = inspect.signature(plan_sweep).bind(*args, **kwargs).arguments
    case_files = _case_files_digests(arguments.get("cases"))
    executor = ProcessExecutor(1, PLAN_TIMEOUT, kind="implementation")
    try:
        kind, value = executor.submit(_plan_in_worker, args, kwargs).result()
    except Exception as error:  # a hang or a crash while loading the user's module
        exit_code = getattr(error, "exitcode", None)
        if exit_code is not None:
            what = (f"the process importing it ended with exit code {exit_code} (while importing the module "
                    "or calling it on a probe case)")
        elif isinstance(error, TimeoutError):
            what = f"importing it did not finish within {PLAN_TIMEOUT:g} s"
        else:
            what = f"{type(error).__name__}: {error}"
        raise UsageError(f"--impl {impl!r}: loading and planning did not finish: {what}") from None
    finally:
        executor.shutdown()
    after = _case_files_digests(arguments.get("cases"))
    if after != case_files:
        changed = sorted(name for name in set(after) | set(case_files) if after.get(name) != case_files.get(name))
        raise UsageError(f"--impl {impl!r}: the case files changed while it was loaded ({', '.join(changed)}): its "
                         "module changed refcheck's planning. They stay changed: restore them (reinstall refcheck, "
                         "or check out your case folder again) before any other run")
    if kind == "usage":
        raise UsageError(value)
    return _checked(value, arguments)


def _case_files_digests(folder: str | Path | None) -> dict[str, str]:
    """A digest of each case file (by its path in the folder) that plans and checks read: the
    module is loaded between the two readings, and may write files its user can."""
    from ..cases.spaces import default_cases_dir

    root = Path(folder) if folder is not None else default_cases_dir()
    digests = {}
    for path in sorted(root.rglob("*.toml")) if root.is_dir() else []:
        try:
            digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            digests[str(path.relative_to(root))] = "unreadable"
    return digests


def no_cases_message(plan: Plan) -> str:
    """Why a plan has no case to run: the implementation has none of the selected layers, or every
    case of those it has needs what its code does not take (each such layer's summary named)."""
    if plan.unsupported:
        lines = "; ".join(plan.unsupported.values())
        return f"no cases to run: every selected case needs something the implementation does not take ({lines})"
    return ("no cases to run: the implementation has none of the selected layers "
            f"(it provides: {', '.join(plan.implementation.layers) or 'nothing'})")


_ALL_KINDS = frozenset(kind for kinds in VALUE_KINDS.values() for kind in kinds) - {"normal"}


def _id_agrees(case: Case) -> bool:
    """The case's content makes the parts of its id that case_id writes for it: the hyperparameters
    (in order, first), the kernel, a missing bias, the output count, the input shape, the input kind
    and the dtype; and torch takes its shapes and hyperparameters together."""
    if case.layer not in LAYERS or case.id.partition("[")[0] != case.layer:
        return False
    spec = LAYERS[case.layer]
    parts = case.id[case.id.find("[") + 1:-1].split("-")
    if parts[-1] != dtype_tag(case.dtype) or case.values not in VALUE_KINDS.get(case.layer, ()):
        return False
    kinds = [part for part in parts if part in _ALL_KINDS]
    if kinds != ([] if case.values == "normal" else [case.values]):
        return False
    hparams = case.hparam_map
    try:
        written = [id_part(name, value) for name, value in case.hparams
                   if spec.hyper(name).in_id_at_default or value != spec.hyper(name).default_for(hparams)]
        spec.output_shapes(case.shape_map, hparams)
    except Exception:  # noqa: BLE001 - a hyperparameter the layer lacks, shapes torch would refuse
        return False
    inner, prefix = case.id[case.id.find("[") + 1:-1], "-".join(written)
    if written and not (inner == prefix or inner.startswith(prefix + "-")):  # (a negative value holds a '-')
        return False
    shapes = case.shape_map
    if case.layer in SEQLOSS_LAYERS or spec.is_update_rule:
        return True
    weight, input_shape = shapes.get("weight"), shapes.get("input")
    if input_shape and "x".join(str(size) for size in input_shape) not in parts:
        return False
    if "bias" in shapes and ("nobias" in parts or "noaffine" in parts) != (shapes["bias"] is None):
        return False
    if spec.family == "conv" and case.layer == "conv2d" and weight is not None:
        if "k" + "x".join(str(k) for k in weight[2:]) not in parts or f"o{weight[0]}" not in parts:
            return False
    return True


def _checked(plan: Plan, arguments: dict[str, Any]) -> Plan:
    """The plan made in the implementation's process, held to what this process knows: the code
    to run is the one named here (not a name the plan carries), whether gradients are checked is
    this run's option, each case's seed, tolerance and source are those of its id and of the case
    files, and its content makes its id (hyperparameters, shapes, input kind, dtype). A module that
    changes refcheck's planning from inside its process cannot loosen the tolerance, skip the
    backward, or run an easier configuration under a case's id that way."""
    impl, map_path = arguments.get("impl"), arguments.get("map_path")
    plan.implementation.name = implementation_reference(impl)
    plan.implementation.map_path = str(Path(map_path).resolve()) if map_path else None
    plan.forward_only = bool(arguments.get("forward_only", False))
    seed = arguments.get("seed", 0)
    cases = [*plan.cases, *plan.outside]  # a layer may have all of its cases outside (every one unsupported)
    requested = parse_list(arguments.get("layers"), tuple(LAYERS), "--layers")
    planned = {case.layer for case in cases if isinstance(case, Case)}
    if requested is not None and not planned <= set(requested):
        raise UsageError(f"--impl {impl!r}: the plan made while loading it has cases of "
                         f"{', '.join(sorted(planned - set(requested)))}, which --layers does not name: "
                         "its module changed refcheck's planning")
    spaces = {space.layer: space for space in load_spaces(arguments.get("cases"), sorted({c.layer for c in cases}))}
    for case in cases:
        space = spaces.get(case.layer) if isinstance(case, Case) else None
        if (space is None or case.seed != case_seed(case.id, seed) or case.source != space.source
                or case.tolerance != tuple(sorted(space.tolerance.items())) or not _id_agrees(case)):
            raise UsageError(f"--impl {impl!r}: the plan made while loading it does not match the case files "
                             f"(case {case.id!r}): its module changed refcheck's planning")
    # Without --layers, every layer the module was found to have (its plan says which) is checked:
    # one whose cases the module left out of the plan is missing from it, not "not implemented".
    expected = requested if requested is not None else sorted(set(plan.implementation.layers) & set(LAYERS))
    _holds_every_case(plan, cases, arguments, impl, expected)
    return plan


def _holds_every_case(plan: Plan, cases: list[Case], arguments: dict[str, Any], impl: Any,
                      requested: list[str] | None) -> None:
    """Every case of the full sweep of the ``requested`` layers (those --layers names, or those the
    module has), expanded here by refcheck's own layers, which take every value, is in the plan: to
    run, or outside the code's supported space (then reported as not supported). A module that
    drops the cases its code would fail, or a whole layer, stops the run."""
    layers = sorted(set(requested or ()) | {case.layer for case in cases})
    if not layers:
        return
    full = plan_sweep(None, layers, arguments.get("cases"), dtypes=arguments.get("dtypes"),
                      quick=arguments.get("quick", False), seed=arguments.get("seed", 0),
                      expansion_cache=arguments.get("expansion_cache"))
    held = {case.id for case in cases}
    missing = [case.id for case in full.cases if case.id not in held]
    if missing:
        raise UsageError(f"--impl {impl!r}: the plan made while loading it leaves out {len(missing)} case(s) of the "
                         f"case files (first {missing[0]!r}): its module changed refcheck's planning")
