"""Expanding a case space into :class:`Case` records, with value and pairwise coverage.

Expansion keeps only configurations torch accepts (the spec's shape rules), then adds cases until
every value of every parameter, and every pair of values of the ``pairwise`` parameters, appears in
at least one valid case. Pairs that no valid case can hold (``padding='same'`` with a stride) are
reported as infeasible. With ``quick=True`` the grid is not enumerated: the sweep is only what the
coverage needs.

Expansion runs inside what an implementation supports (:class:`Capabilities`): values it cannot
take leave the space before expansion, so the grid, the ``vary`` spread and the pairwise coverage
are all computed over cases that run. Items only an unsupported configuration could hold are
listed as ``unsupported`` (not ``missing``). A case's id depends only on its configuration, so the
same configuration has the same id whatever the implementation.
"""
from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..specs import LAYERS, CaseFileError, InvalidConfig, LayerSpec
from .case import Case, case_id, case_seed
from .shapes_seqloss import SEQLOSS_LAYERS, seqloss_id_parts, seqloss_shapes
from .shapes_convnorm import FAMILY_SHAPES
from .inputs_optim import optim_id_shapes, optim_shapes
from .spaces import SHAPE_DEFAULTS, Space

__all__ = ["ALL_SUPPORTED", "Capabilities", "Coverage", "build_case", "expand", "value_for_check"]

Shape = tuple[int, ...]


# --- building one case from parameter values ------------------------------------------------


def _pair(value: Any, arity: int = 2) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * arity
    return tuple(value) if isinstance(value, (tuple, list)) else value


def _as_shape(value: Any) -> Shape:
    return (value,) if isinstance(value, int) else tuple(value)


def _stands_for_none(hyper: Any, value: Any) -> bool:
    """'none' in a case file is None, except for a string-valued hyperparameter where 'none' is
    torch's own value (reduction='none', gelu's approximate='none'); divisor_override 0 is None too."""
    if hyper.name == "divisor_override" and value == 0:
        return True
    return value == "none" and not isinstance(hyper.default, str)


def build_case(space: Space, params: Mapping[str, Any], base_seed: int = 0) -> Case:
    """A Case from one choice of every parameter; raises InvalidConfig if torch would reject it."""
    spec = LAYERS[space.layer]
    p = {**SHAPE_DEFAULTS, **params}
    hparams: dict[str, Any] = {}
    for hyper in spec.hypers:
        if hyper.name in p:
            value = p[hyper.name]
            if _stands_for_none(hyper, value):
                value = None
            if hyper.name == "groups" and value == "depthwise":
                value = _as_shape(p["channels"])[0]
            if hyper.name == "norm_type":
                value = float(value)
            if hyper.name == "scale" and value == "none":
                value = None
            hparams[hyper.name] = _pair(value, hyper.arity) if hyper.pair and value not in ("same", "valid") else value
        else:
            hparams[hyper.name] = hyper.default_for(hparams)
        if hparams[hyper.name] is None and hyper.name not in ("divisor_override", "padding_idx", "scale"):
            raise InvalidConfig(f"{hyper.name} has no default; give it in the case file")
    shapes, kernel = _shapes(spec, p, hparams)
    spec.output_shapes(shapes, hparams)  # raises InvalidConfig
    values = p["values"]
    id_shapes, extra = seqloss_id_parts(spec, shapes, p) if spec.name in SEQLOSS_LAYERS else (shapes, [])
    if spec.is_update_rule:
        id_shapes = optim_id_shapes(shapes)
    id_hparams = {name: value for name, value in hparams.items()
                  if spec.hyper(name).in_id_at_default or value != spec.hyper(name).default_for(hparams)}
    identifier = case_id(spec.name, id_hparams, id_shapes, p["dtype"], values, kernel, extra)
    return Case(
        layer=spec.name, id=identifier, dtype=p["dtype"], seed=case_seed(identifier, base_seed),
        shapes=tuple((name, shapes[name]) for name in spec.tensors),
        hparams=tuple(hparams.items()), values=values, source=space.source,
        tolerance=tuple(sorted(space.tolerance.items())),
    )


def _shapes(spec: LayerSpec, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    family = spec.family
    if spec.name in SEQLOSS_LAYERS:
        return seqloss_shapes(spec, p, hparams), None
    if family in FAMILY_SHAPES:
        return FAMILY_SHAPES[family](spec, p, hparams)
    if spec.is_update_rule:
        return optim_shapes(spec, p, hparams)
    if family == "conv":
        c_in, c_out = _as_shape(p["channels"]) if not isinstance(p["channels"], int) else (p["channels"],) * 2
        kernel = _pair(p.get("kernel_size", 3))
        groups = hparams["groups"]
        if c_in % groups:
            raise InvalidConfig(f"groups={groups} must divide in_channels={c_in}")
        shapes = {"input": (p["batch"], c_in, *_pair(p["input_size"])),
                  "weight": (c_out, c_in // groups, *kernel),
                  "bias": (c_out,) if p["bias"] else None}
        return shapes, kernel
    if family == "pooling":
        return {"input": (p["batch"], p["channels"], *_pair(p["input_size"]))}, None
    if spec.name == "linear":
        d_in, d_out = _as_shape(p["features"])
        return {"input": (*_as_shape(p["batch_shape"]), d_in), "weight": (d_out, d_in),
                "bias": (d_out,) if p["bias"] else None}, None
    shape = _as_shape(p["input_shape"])
    if family == "loss":
        target = shape[:1] if spec.name == "cross_entropy" else shape
        if spec.name == "cross_entropy" and len(shape) != 2:
            raise InvalidConfig("cross_entropy input must be (N, C)")
        return {"input": shape, "target": target}, None
    return {"input": shape}, None


# --- what an implementation supports ---------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """What an implementation supports, as expansion needs it.

    value_supported: ``(hyperparameter, value) -> bool`` for one value on its own (pairs given as
        (h, w) tuples); values it rejects leave the space before expansion. None: every value.
    case_reason: ``(case) -> reason | None`` for limits that involve several values or the shapes
        (padding='same' with an even kernel); None: every case.
    """

    value_supported: Callable[[str, Any], bool] | None = None
    case_reason: Callable[[Case], str | None] | None = None


ALL_SUPPORTED = Capabilities()


def _value_for_check(layer: str, name: str, value: Any) -> Any:
    """A case-file value as the hyperparameter value it stands for, where that is context-free
    (a pair only where this layer's hyperparameter is one: max_pool1d's stride stays an int)."""
    hyper = next((h for h in LAYERS[layer].hypers if h.name == name), None)
    if hyper is not None and _stands_for_none(hyper, value):
        return None
    if name == "norm_type":
        return float(value)
    if value in ("same", "valid", "depthwise"):
        return value
    return _pair(value, hyper.arity) if hyper is not None and hyper.pair else value


value_for_check = _value_for_check


def _restricted(space: Space, capabilities: Capabilities) -> Space:
    """The space without the hyperparameter values the implementation cannot take."""
    check = capabilities.value_supported
    if check is None:
        return space
    hypers = set(LAYERS[space.layer].hyper_names)

    def keep(section: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        kept = {}
        for name, values in section.items():
            if name in hypers:
                values = [v for v in values if v == "depthwise" or check(name, _value_for_check(space.layer, name, v))]
            kept[name] = values
        return kept

    return Space(space.layer, space.source, keep(space.grid), keep(space.vary), space.pairwise, space.tolerance)


# --- expansion with coverage ---------------------------------------------------------------


@dataclass
class Coverage:
    """Which values and value pairs the expanded cases hold.

    required: every single value of every parameter, and every pair of values of the pairwise
        parameters, as (("name", value), ...) items.
    infeasible: required items that no valid configuration can hold.
    missing: feasible required items that no case holds (empty when expansion succeeded).
    unsupported: items of the full space that only configurations outside the implementation's
        supported space hold (not counted in ``required``).
    """

    layer: str
    required: int
    covered: int
    infeasible: list[tuple[tuple[str, Any], ...]]
    missing: list[tuple[tuple[str, Any], ...]]
    unsupported: list[tuple[tuple[str, Any], ...]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def _required_items(space: Space) -> list[tuple[tuple[str, Any], ...]]:
    params = space.params
    items = [((name, value),) for name, values in params.items() for value in values]
    for a, b in itertools.combinations(space.pairwise, 2):
        items += [((a, va), (b, vb)) for va in params[a] for vb in params[b]]
    return items


def _items_of(choice: Mapping[str, Any], space: Space) -> set[tuple[tuple[str, Any], ...]]:
    held = {((name, value),) for name, value in choice.items()}
    for a, b in itertools.combinations(space.pairwise, 2):
        held.add(((a, choice[a]), (b, choice[b])))
    return held


def _try_build(space: Space, choice: Mapping[str, Any], base_seed: int,
               case_reason: Callable[[Case], str | None] | None = None,
               built: dict[tuple, Case | None] | None = None) -> Case | None:
    """The case of a choice, or None when torch rejects it or the implementation does not support it.
    ``built``: cases already built in this expansion, by choice (the same choice comes up many times)."""
    key = tuple(sorted(choice.items())) if built is not None else ()
    if built is not None and key in built:
        case = built[key]
    else:
        try:
            case = build_case(space, choice, base_seed)
        except InvalidConfig:
            case = None
        if built is not None:
            built[key] = case
    if case is None or (case_reason is not None and case_reason(case)):
        return None
    return case


def _first_rejection(space: Space) -> str:
    """Why torch rejects the space's first configuration (for the error message)."""
    try:
        build_case(space, {name: values[0] for name, values in space.params.items()})
    except InvalidConfig as error:
        return str(error)
    return "no valid combination found"


def _rotated(values: Sequence[Any], start: int) -> list[Any]:
    start %= len(values)
    return list(values[start:]) + list(values[:start])


def _complete(space: Space, fixed: Mapping[str, Any], free: Sequence[str], start: int, base_seed: int,
              wanted: set | None = None, budget: int = 64,
              case_reason: Callable[[Case], str | None] | None = None,
              built: dict[tuple, Case | None] | None = None) -> tuple[dict[str, Any], Case] | None:
    """A valid choice of the free parameters given the fixed ones.

    Candidates are visited in a rotated order (so consecutive grid points get different values);
    with ``wanted`` the candidate holding most wanted items among the first ``budget`` valid ones wins.
    """
    params = space.params
    # A pseudo-random rotation per parameter and start, so that values spread over the grid
    # independently of each other (a shared stride would tie one parameter's value to another's).
    orders = [_rotated(params[name], zlib.crc32(f"{name}:{start}".encode())) for name in free]
    best: tuple[int, dict[str, Any], Case] | None = None
    seen_valid = 0
    for values in itertools.product(*orders):
        choice = {**fixed, **dict(zip(free, values))}
        case = _try_build(space, choice, base_seed, case_reason, built)
        if case is None:
            continue
        if wanted is None:
            return choice, case
        score = len(_items_of(choice, space) & wanted)
        if best is None or score > best[0]:
            best = (score, choice, case)
        seen_valid += 1
        if seen_valid >= budget:
            break
    return None if best is None else (best[1], best[2])


def expand(space: Space, *, quick: bool = False, base_seed: int = 0,
           capabilities: Capabilities = ALL_SUPPORTED) -> tuple[list[Case], Coverage]:
    """Expand a space into valid, supported cases with full value and pairwise coverage.

    Coverage is measured over the returned cases only; required items that only unsupported
    configurations can hold are listed in ``Coverage.unsupported``. ``quick``: a subset of the
    full sweep's cases that holds the same coverage (chosen greedily, most newly covered values
    and pairs first), so a bug a quick run finds is in the full sweep too.
    """
    chosen, coverage = _expand_full(space, base_seed, capabilities)
    if not quick:
        return [case for case, _ in chosen], coverage
    return _covering_subset(chosen, _restricted(space, capabilities)), coverage


def _kind_at_dtype(choice: Mapping[str, Any]) -> set[tuple[tuple[str, Any], ...]]:
    """The (input kind, dtype) pair of a choice: a quick subset holds each that the sweep holds,
    since what overflows or underflows (large, tiny, near-max values) does so at one precision."""
    if "values" in choice and "dtype" in choice:
        return {(("values", choice["values"]), ("dtype", choice["dtype"]))}
    return set()


def _covering_subset(chosen: list[tuple[Case, dict[str, Any]]], space: Space) -> list[Case]:
    """The fewest cases (greedily) whose values and pairs cover all that ``chosen`` covers (each
    input kind at each dtype too), in the order of ``chosen``."""
    items = [_items_of(choice, space) | _kind_at_dtype(choice) for _, choice in chosen]
    held = set().union(*items) if items else set()
    wanted = (set(_required_items(space)) & held) | {item for item in held if len(item) == 2 and item[0][0] == "values"
                                                     and item[1][0] == "dtype"}
    picked: set[int] = set()
    while wanted:
        best = max(range(len(chosen)), key=lambda i: (len(items[i] & wanted), -i))
        picked.add(best)
        wanted -= items[best]
    return [case for i, (case, _) in enumerate(chosen) if i in picked]


def _expand_full(space: Space, base_seed: int, capabilities: Capabilities
                 ) -> tuple[list[tuple[Case, dict[str, Any]]], Coverage]:
    """Every grid combination completed into a case, then cases for the values and pairs the grid
    left uncovered; with the choice of values each case was built from."""
    full = space
    space = _restricted(space, capabilities)
    if any(not values for values in space.params.values()):
        unsupported = _required_items(full)
        return [], Coverage(space.layer, 0, 0, [], [], unsupported)
    case_reason = capabilities.case_reason
    params = space.params
    grid_names = list(space.grid)
    free_names = [name for name in params if name not in grid_names]
    chosen: dict[str, Case] = {}
    choices: list[dict[str, Any]] = []
    built: dict[tuple, Case | None] = {}

    def add(choice: dict[str, Any], case: Case) -> None:
        if case.id not in chosen:
            chosen[case.id] = case
            choices.append(choice)

    grid_values = [params[name] for name in grid_names]
    for index, combination in enumerate(itertools.product(*grid_values)):
        found = _complete(space, dict(zip(grid_names, combination)), free_names, index, base_seed,
                          case_reason=case_reason, built=built)
        if found:
            add(*found)

    required = _required_items(space)
    covered: set = set()
    for choice in choices:
        covered |= _items_of(choice, space)
    infeasible, unsupported = [], []
    for item in required:
        if item in covered:
            continue
        fixed = dict(item)
        free = [n for n in params if n not in fixed]
        found = _complete(space, fixed, free, len(choices), base_seed, set(required) - covered,
                          case_reason=case_reason, built=built)
        if found is None:
            feasible = case_reason is not None and _complete(space, fixed, free, 0, base_seed, built=built) is not None
            (unsupported if feasible else infeasible).append(item)
            continue
        add(*found)
        covered |= _items_of(found[0], space)
    if not chosen and capabilities is ALL_SUPPORTED:
        raise CaseFileError(space.source, space.layer, "has no configuration torch accepts: every combination of its "
                            f"values is invalid (for example: {_first_rejection(space)})")
    missing = [item for item in required if item not in covered and item not in infeasible
               and item not in unsupported]
    in_space = len(required) - len(unsupported)
    kept = set(required)
    unsupported += [item for item in _required_items(full) if item not in kept]
    coverage = Coverage(space.layer, in_space, sum(1 for item in required if item in covered), infeasible,
                        missing, unsupported)
    return list(zip(chosen.values(), choices)), coverage
