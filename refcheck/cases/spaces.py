"""Case spaces: loading and validating ``cases/*.toml`` into :class:`Space` records.

A case file holds one table per layer::

    [conv2d]
    pairwise = ["kernel_size", "stride", "padding", "dilation", "groups"]
    [conv2d.grid]      # every combination of these is tried (the default sweep)
    kernel_size = [1, 3, [3, 2]]
    stride = [1, 2]
    [conv2d.vary]      # spread over the grid combinations; every value appears somewhere
    dtype = ["float32", "float64"]
    bias = [true, false]
    [conv2d.tolerance] # optional overrides of the tolerance rule (see refcheck.compare)
    float32 = 64

A malformed file raises :class:`CaseFileError` naming the file and the key; expansion into cases
is in :mod:`refcheck.cases.expand`.
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..specs import LAYERS, CaseFileError, LayerSpec
from .case import DTYPES
from .inputs import VALUE_KINDS
from .inputs_optim import OPTIM_SHAPE_DEFAULTS, OPTIM_SHAPE_PARAMS
from .shapes_seqloss import SEQLOSS_PARAMS
from .shapes_convnorm import SHAPE_DEFAULTS as _CONVNORM_DEFAULTS
from .shapes_convnorm import SHAPE_PARAMS as _CONVNORM_PARAMS

__all__ = ["SHAPE_DEFAULTS", "Space", "allowed_params", "default_cases_dir", "load_spaces", "space_from_table"]

Shape = tuple[int, ...]

# Parameters of a space that are not torch hyperparameters, by layer family.
_SHAPE_PARAMS = {
    "conv": ("batch", "channels", "input_size", "kernel_size", "bias"),
    "pooling": ("batch", "channels", "input_size"),
    "dense": ("batch_shape", "features", "bias", "input_shape"),
    "activation": ("input_shape", "num_parameters"),
    "loss": ("input_shape", "class_weight", "element_weight"),
    **_CONVNORM_PARAMS,
    **SEQLOSS_PARAMS,
    **OPTIM_SHAPE_PARAMS,
}
_COMMON_PARAMS = ("dtype", "values")
_TABLE_KEYS = ("grid", "vary", "pairwise", "tolerance")
_TOLERANCE_KEYS = ("float32", "float64", "torch_factor")
SHAPE_DEFAULTS = {
    "batch": 2, "channels": 3, "input_size": (6, 6), "bias": True, "batch_shape": (4,),
    "features": (5, 3), "input_shape": (4, 5), "dtype": "float64", "values": "normal",
    **_CONVNORM_DEFAULTS,
    **OPTIM_SHAPE_DEFAULTS,
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
            _check_value_range(space, name, value)
    return space


def space_from_table(layer: str, table: Any, source: str) -> Space:
    """One layer's table of a case file (a parsed TOML table) as a validated Space."""
    return _space_from_table(layer, table, source)


# Smallest value torch takes for each integer parameter (every element of a tuple is checked).
_MINIMUM = {"kernel_size": 1, "stride": 1, "dilation": 1, "groups": 1, "batch": 1, "channels": 1,
            "input_size": 1, "output_size": 1, "features": 1, "batch_shape": 1, "input_shape": 1,
            "padding": 0, "output_padding": 0}


def _check_value_range(space: Space, name: str, value: Any) -> None:
    """Reject values torch cannot take (stride 0, negative padding, kernel 0...), naming file, key and value."""
    minimum = _MINIMUM.get(name)
    if minimum is None:
        return
    numbers = value if isinstance(value, tuple) else (value,)
    for number in numbers:
        if isinstance(number, (int, float)) and not isinstance(number, bool) and number < minimum:
            need = "at least 1" if minimum == 1 else "0 or more"
            raise CaseFileError(space.source, f"{space.layer}.{name}",
                                f"{value!r} is out of range: torch needs {name} {need}")


def _check_value_type(space: Space, name: str, value: Any) -> None:
    """Reject values of the wrong kind early, with the file and key named."""
    pairish = {"input_size", "kernel_size", "stride", "padding", "dilation", "output_size"}
    key = f"{space.layer}.{name}"
    if name in pairish:
        arity = max((h.arity for h in LAYERS[space.layer].hypers if h.pair), default=2)
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, tuple) and len(value) == arity and all(isinstance(v, int) for v in value))
        if name == "padding" and value in ("same", "valid"):
            ok = space.layer in ("conv1d", "conv2d", "conv3d")
        if not ok:
            raise CaseFileError(space.source, key, f"{value!r} is not an int or a [h, w] pair")
    if name in {"input_shape", "batch_shape", "features", "channels", "param_shape"}:
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
