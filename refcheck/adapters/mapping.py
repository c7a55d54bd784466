"""A short mapping for what discovery cannot know: which class or function is which layer, its
argument names, where it keeps parameters and gradients, its layout, and convention offsets.

The same table is read from ``--map FILE``, from ``[tool.refcheck]`` in the pyproject.toml of the
user's project, or from a ``refcheck.toml`` beside their code (the first found, in that order)::

    [conv2d]                                  # the layer, named as in torch
    class = "Conv"                            # or: function = "conv_fwd", backward = "conv_bwd"
    args = { out_channels = "num_kernels", kernel_size = "convolution_shape" }
    weight = "weights"                        # where the object keeps its parameters
    grad_weight = "gradient_weights"          # and leaves their gradients ("theta.data" / "theta.grad"
                                              # for a parameter object kept in self.theta)
    layout = "NHWC"                           # activations: NCHW (default) or NHWC
    weight_layout = "(kh, kw, C, F)"          # or "(F, kh, kw, C)"; "(in, out)" for linear
    offsets = { dilation = -1 }               # the code counts dilation from 0
    fixed = { padding = "same" }              # a value the code always uses
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..specs import LAYERS, CaseFileError
from .layouts import ACTIVATION_AXES, WEIGHT_AXES

__all__ = ["LayerMapping", "find_mapping", "load_mapping", "parse_mapping"]

_KEYS = ("class", "function", "backward", "args", "weight", "bias", "grad_weight", "grad_bias", "layout",
         "weight_layout", "offsets", "fixed", "single_sample", "learning_rate")


@dataclass(frozen=True)
class LayerMapping:
    """One layer's entry of a mapping (see the module docstring for the keys)."""

    layer: str
    class_name: str = ""
    function: str = ""
    backward: str = ""
    args: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    gradients: Mapping[str, str] = field(default_factory=dict)
    layout: str = ""
    weight_layout: str = ""
    offsets: Mapping[str, int] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    single_sample: bool = False
    learning_rate: float = 1.0
    source: str = ""


def _attribute_path(value: Any) -> bool:
    """An attribute name, or a holder's: "weights", "weight.data" (one dot at most)."""
    return isinstance(value, str) and 1 <= len(value.split(".")) <= 2 and all(p.isidentifier() for p in value.split("."))


def _pairish(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def parse_mapping(table: Mapping[str, Any], source: str) -> dict[str, LayerMapping]:
    """Check and read a mapping table; CaseFileError names the file and the key of a mistake."""
    mappings = {}
    for layer, entry in table.items():
        if layer not in LAYERS:
            raise CaseFileError(source, layer, "unknown layer", tuple(LAYERS))
        if not isinstance(entry, Mapping):
            raise CaseFileError(source, layer, "must be a table", _KEYS)
        for key in entry:
            if key not in _KEYS:
                raise CaseFileError(source, f"{layer}.{key}", "unknown key", _KEYS)
        layout = entry.get("layout", "")
        if layout and layout not in ACTIVATION_AXES:
            raise CaseFileError(source, f"{layer}.layout", f"unknown layout {layout!r}", tuple(ACTIVATION_AXES))
        weight_layout = entry.get("weight_layout", "")
        if weight_layout and weight_layout not in WEIGHT_AXES:
            raise CaseFileError(source, f"{layer}.weight_layout", f"unknown layout {weight_layout!r}",
                                tuple(WEIGHT_AXES))
        if "class" in entry and "function" in entry:
            raise CaseFileError(source, layer, "give either class or function, not both")
        for key in ("args", "offsets", "fixed"):
            if not isinstance(entry.get(key, {}), Mapping):
                raise CaseFileError(source, f"{layer}.{key}", "must be a table (key = value)")
        for key in ("weight", "bias", "grad_weight", "grad_bias"):
            if key in entry and not _attribute_path(entry[key]):
                raise CaseFileError(source, f"{layer}.{key}", f"{entry[key]!r} is not an attribute name: give "
                                    "one (\"weights\") or a holder's (\"weight.data\", \"weight.grad\")")
        hypers = set(LAYERS[layer].hyper_names)
        for key in ("offsets", "fixed"):
            for name in entry.get(key, {}):
                if name not in hypers:
                    raise CaseFileError(source, f"{layer}.{key}.{name}", "not a hyperparameter of the layer",
                                        tuple(sorted(hypers)))
        mappings[layer] = LayerMapping(
            layer, class_name=entry.get("class", ""), function=entry.get("function", ""),
            backward=entry.get("backward", ""), args=dict(entry.get("args", {})),
            parameters={k: entry[k] for k in ("weight", "bias") if k in entry},
            gradients={k.removeprefix("grad_"): entry[k] for k in ("grad_weight", "grad_bias") if k in entry},
            layout=layout, weight_layout=weight_layout, offsets=dict(entry.get("offsets", {})),
            fixed={k: _pairish(v) for k, v in entry.get("fixed", {}).items()},
            single_sample=bool(entry.get("single_sample", False)),
            learning_rate=float(entry.get("learning_rate", 1.0)), source=source)
    return mappings


def load_mapping(path: str | Path) -> dict[str, LayerMapping]:
    """Read a mapping file: a refcheck.toml, or a pyproject.toml's ``[tool.refcheck]`` table."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CaseFileError(str(path), "", "no such mapping file") from None
    except tomllib.TOMLDecodeError as error:
        raise CaseFileError(str(path), "", f"is not valid TOML: {error}") from None
    if path.name == "pyproject.toml":
        document = document.get("tool", {}).get("refcheck", {})
    return parse_mapping(document, str(path))


def find_mapping(code: str | Path) -> Path | None:
    """The mapping that goes with the user's code: refcheck.toml beside it, or a pyproject.toml
    with ``[tool.refcheck]`` in its folder or a folder above (up to the project root)."""
    start = Path(code).resolve()
    folder = start if start.is_dir() else start.parent
    if (folder / "refcheck.toml").is_file():
        return folder / "refcheck.toml"
    for candidate in (folder, *folder.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            try:
                document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, OSError):
                return None
            return pyproject if "refcheck" in document.get("tool", {}) else None
        if (candidate / ".git").exists():
            return None
    return None
