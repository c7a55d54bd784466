"""Case spaces: loading ``cases/*.toml`` and expanding them into :class:`Case` records.

A case file holds one table per layer::

    [conv2d]
    pairwise = ["kernel_size", "stride", "padding", "dilation", "groups"]
    [conv2d.grid]      # every combination of these is tried (the default sweep)
    kernel_size = [1, 3, [3, 2]]
    stride = [1, 2]
    [conv2d.vary]      # spread over the grid combinations; every value appears somewhere
    dtype = ["float32", "float64"]
    bias = [true, false]
    [conv2d.tolerance] # optional overrides of the tolerance rule (see compare.py)
    float32 = 64

Expansion keeps only configurations torch accepts (the spec's shape rules), then adds cases until
every value of every parameter, and every pair of values of the ``pairwise`` parameters, appears in
at least one valid case. Pairs that no valid case can hold (``padding='same'`` with a stride) are
reported as infeasible. With ``quick=True`` the grid is not enumerated: the sweep is only what the
coverage needs.
"""
from __future__ import annotations

import itertools
import tomllib
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .case import DTYPES, Case, case_id, case_seed
from .errors import CaseFileError
from .inputs import VALUE_KINDS
from .specs import LAYERS, InvalidConfig, LayerSpec

__all__ = ["Coverage", "Space", "build_case", "default_cases_dir", "expand", "load_spaces"]

Shape = tuple[int, ...]

# Parameters of a space that are not torch hyperparameters, by layer family.
_SHAPE_PARAMS = {
    "conv": ("batch", "channels", "input_size", "kernel_size", "bias"),
    "pooling": ("batch", "channels", "input_size"),
    "dense": ("batch_shape", "features", "bias", "input_shape"),
    "activation": ("input_shape",),
    "loss": ("input_shape",),
}
_COMMON_PARAMS = ("dtype", "values")
_TABLE_KEYS = ("grid", "vary", "pairwise", "tolerance")
_TOLERANCE_KEYS = ("float32", "float64", "torch_factor")
_SHAPE_DEFAULTS = {
    "batch": 2, "channels": 3, "input_size": (6, 6), "bias": True, "batch_shape": (4,),
    "features": (5, 3), "input_shape": (4, 5), "dtype": "float64", "values": "normal",
}


@dataclass(frozen=True)
class Space:
    """One layer's parameter space from a case file."""

    layer: str
    source: str
    grid: dict[str, list[Any]]
    vary: dict[str, list[Any]]
    pairwise: tuple[str, ...]
    tolerance: dict[str, float] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, list[Any]]:
        return {**self.grid, **self.vary}


def allowed_params(spec: LayerSpec) -> tuple[str, ...]:
    """Parameter names a layer's space may use."""
    return _SHAPE_PARAMS[spec.family] + spec.hyper_names + _COMMON_PARAMS


def default_cases_dir() -> Path:
    """The case files shipped inside the package (so `refcheck run` works from any folder)."""
    return Path(str(resources.files("refcheck") / "cases"))


def _normalise(value: Any) -> Any:
    """TOML arrays become tuples, so values are hashable and print as Python literals."""
    if isinstance(value, list):
        return tuple(_normalise(v) for v in value)
    return value


def _space_from_table(layer: str, table: Any, source: str) -> Space:
    spec = LAYERS[layer]
    if not isinstance(table, dict):
        raise CaseFileError(source, layer, "must be a table", _TABLE_KEYS)
    for key in table:
        if key not in _TABLE_KEYS:
            raise CaseFileError(source, f"{layer}.{key}", "unknown key", _TABLE_KEYS)
    allowed = allowed_params(spec)
    sections: dict[str, dict[str, list[Any]]] = {}
    for section in ("grid", "vary"):
        raw = table.get(section, {})
        if not isinstance(raw, dict):
            raise CaseFileError(source, f"{layer}.{section}", "must be a table of parameter = [values]", allowed)
        parsed = {}
        for name, values in raw.items():
            key = f"{layer}.{section}.{name}"
            if name not in allowed:
                raise CaseFileError(source, key, "unknown parameter", allowed)
            if not isinstance(values, list) or not values:
                raise CaseFileError(source, key, "must be a non-empty list of values")
            parsed[name] = [_normalise(v) for v in values]
        sections[section] = parsed
    both = set(sections["grid"]) & set(sections["vary"])
    if both:
        raise CaseFileError(source, f"{layer}.vary.{sorted(both)[0]}", "is also in grid; list it once")
    params = {**sections["grid"], **sections["vary"]}
    for value in params.get("dtype", []):
        if value not in DTYPES:
            raise CaseFileError(source, f"{layer}.dtype", f"unknown dtype {value!r}", DTYPES)
    for value in params.get("values", []):
        if value not in VALUE_KINDS[layer]:
            raise CaseFileError(source, f"{layer}.values", f"unknown value kind {value!r}", VALUE_KINDS[layer])
    pairwise = table.get("pairwise", [])
    if not isinstance(pairwise, list) or any(p not in params for p in pairwise):
        raise CaseFileError(source, f"{layer}.pairwise", "must list parameters of grid or vary", tuple(params))
    tolerance = table.get("tolerance", {})
    if not isinstance(tolerance, dict):
        raise CaseFileError(source, f"{layer}.tolerance", "must be a table", _TOLERANCE_KEYS)
    for key, value in tolerance.items():
        if key not in _TOLERANCE_KEYS:
            raise CaseFileError(source, f"{layer}.tolerance.{key}", "unknown key", _TOLERANCE_KEYS)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise CaseFileError(source, f"{layer}.tolerance.{key}", f"must be a positive number, got {value!r}")
    space = Space(layer, source, sections["grid"], sections["vary"], tuple(pairwise),
                  {k: float(v) for k, v in tolerance.items()})
    for name, values in space.params.items():
        for value in values:
            _check_value_type(space, name, value)
    return space


def _check_value_type(space: Space, name: str, value: Any) -> None:
    """Reject values of the wrong kind early, with the file and key named."""
    pairish = {"input_size", "kernel_size", "stride", "padding", "dilation", "output_size"}
    key = f"{space.layer}.{name}"
    if name in pairish:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value))
        if name == "padding" and value in ("same", "valid"):
            ok = space.layer == "conv2d"
        if not ok:
            raise CaseFileError(space.source, key, f"{value!r} is not an int or a [h, w] pair")
    if name in {"input_shape", "batch_shape", "features", "channels"}:
        ok = isinstance(value, int) or (isinstance(value, tuple) and all(isinstance(v, int) for v in value))
        if not ok:
            raise CaseFileError(space.source, key, f"{value!r} is not an int or a list of ints")


def load_spaces(directory: Path | str | None = None, layers: Iterable[str] | None = None) -> list[Space]:
    """Read every ``*.toml`` in a folder into spaces, optionally only for some layers.

    Raises CaseFileError naming the file and key for malformed files and unknown layers.
    """
    folder = Path(directory) if directory is not None else default_cases_dir()
    if not folder.is_dir():
        raise CaseFileError(str(folder), "", "is not a folder of case files")
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise CaseFileError(str(folder), "", "holds no *.toml case files")
    spaces = []
    for path in files:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise CaseFileError(str(path), "", f"is not valid TOML: {error}") from None
        for layer, table in document.items():
            if layer not in LAYERS:
                raise CaseFileError(str(path), layer, "unknown layer", tuple(LAYERS))
            spaces.append(_space_from_table(layer, table, str(path)))
    wanted = set(layers) if layers is not None else None
    if wanted is not None:
        spaces = [s for s in spaces if s.layer in wanted]
    return spaces


# --- building one case from parameter values ------------------------------------------------


def _pair(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    return tuple(value) if isinstance(value, (tuple, list)) else value


def _as_shape(value: Any) -> Shape:
    return (value,) if isinstance(value, int) else tuple(value)


def build_case(space: Space, params: Mapping[str, Any], base_seed: int = 0) -> Case:
    """A Case from one choice of every parameter; raises InvalidConfig if torch would reject it."""
    spec = LAYERS[space.layer]
    p = {**_SHAPE_DEFAULTS, **params}
    hparams: dict[str, Any] = {}
    for hyper in spec.hypers:
        if hyper.name in p:
            value = p[hyper.name]
            if hyper.name == "divisor_override" and value in ("none", 0):
                value = None
            if hyper.name == "groups" and value == "depthwise":
                value = _as_shape(p["channels"])[0]
            if hyper.name == "norm_type":
                value = float(value)
            hparams[hyper.name] = _pair(value) if hyper.pair and value not in ("same", "valid") else value
        else:
            hparams[hyper.name] = hyper.default_for(hparams)
        if hparams[hyper.name] is None and hyper.name not in ("divisor_override",):
            raise InvalidConfig(f"{hyper.name} has no default; give it in the case file")
    shapes, kernel = _shapes(spec, p, hparams)
    spec.output_shape(shapes, hparams)  # raises InvalidConfig
    values = p["values"]
    identifier = case_id(spec.name, hparams, shapes, p["dtype"], values, kernel)
    return Case(
        layer=spec.name, id=identifier, dtype=p["dtype"], seed=case_seed(identifier, base_seed),
        shapes=tuple((name, shapes[name]) for name in spec.tensors),
        hparams=tuple(hparams.items()), values=values, source=space.source,
        tolerance=tuple(sorted(space.tolerance.items())),
    )


def _shapes(spec: LayerSpec, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    family = spec.family
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


# --- expansion with coverage ---------------------------------------------------------------


@dataclass
class Coverage:
    """Which values and value pairs the expanded cases hold.

    required: every single value of every parameter, and every pair of values of the pairwise
        parameters, as (("name", value), ...) items.
    infeasible: required items that no valid configuration can hold.
    missing: feasible required items that no case holds (empty when expansion succeeded).
    """

    layer: str
    required: int
    covered: int
    infeasible: list[tuple[tuple[str, Any], ...]]
    missing: list[tuple[tuple[str, Any], ...]]

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


def _try_build(space: Space, choice: Mapping[str, Any], base_seed: int) -> Case | None:
    try:
        return build_case(space, choice, base_seed)
    except InvalidConfig:
        return None


def _rotated(values: Sequence[Any], start: int) -> list[Any]:
    start %= len(values)
    return list(values[start:]) + list(values[:start])


def _complete(space: Space, fixed: Mapping[str, Any], free: Sequence[str], start: int, base_seed: int,
              wanted: set | None = None, budget: int = 64) -> tuple[dict[str, Any], Case] | None:
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
        case = _try_build(space, choice, base_seed)
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


def expand(space: Space, *, quick: bool = False, base_seed: int = 0) -> tuple[list[Case], Coverage]:
    """Expand a space into valid cases with full value and pairwise coverage."""
    params = space.params
    grid_names = [] if quick else list(space.grid)
    free_names = [name for name in params if name not in grid_names]
    chosen: dict[str, Case] = {}
    choices: list[dict[str, Any]] = []

    def add(choice: dict[str, Any], case: Case) -> None:
        if case.id not in chosen:
            chosen[case.id] = case
            choices.append(choice)

    grid_values = [params[name] for name in grid_names]
    for index, combination in enumerate(itertools.product(*grid_values)):
        found = _complete(space, dict(zip(grid_names, combination)), free_names, index, base_seed)
        if found:
            add(*found)

    required = _required_items(space)
    covered: set = set()
    for choice in choices:
        covered |= _items_of(choice, space)
    infeasible = []
    for item in required:
        if item in covered:
            continue
        fixed = dict(item)
        found = _complete(space, fixed, [n for n in params if n not in fixed], len(choices), base_seed,
                          set(required) - covered)
        if found is None:
            infeasible.append(item)
            continue
        add(*found)
        covered |= _items_of(found[0], space)
    missing = [item for item in required if item not in covered and item not in infeasible]
    coverage = Coverage(space.layer, len(required), sum(1 for item in required if item in covered), infeasible,
                        missing)
    return list(chosen.values()), coverage
