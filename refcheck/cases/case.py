"""The Case record: one concrete configuration of one layer, frozen, with a stable readable id."""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Case", "DTYPES", "case_id", "case_seed", "format_value", "id_part"]

Shape = tuple[int, ...]

DTYPES = ("float32", "float64")

# Short names used in case ids; the report columns use torch's full names.
_ABBREVIATIONS = {
    "kernel_size": "k", "stride": "s", "padding": "p", "dilation": "d", "groups": "g",
    "ceil_mode": "ceil", "count_include_pad": "cip", "divisor_override": "div", "norm_type": "n",
    "output_size": "o", "negative_slope": "ns", "dim": "dim", "start_dim": "sd", "end_dim": "ed",
    "reduction": "",
    "output_padding": "op", "training": "train", "momentum": "m", "num_groups": "G", "normalized_shape": "nshape",
    "use_input_stats": "uis", "padding_idx": "pidx",
    "approximate": "approx", "min_val": "min", "max_val": "max", "threshold": "th", "is_causal": "causal",
    "num_heads": "heads", "ignore_index": "ii", "label_smoothing": "ls", "log_target": "logt",
    "dampening": "damp", "nesterov": "nest", "weight_decay": "wd", "maximize": "max", "betas": "b",
    "amsgrad": "ams", "centered": "cent",
}


@dataclass(frozen=True)
class Case:
    """One case: a layer, its tensor shapes, hyperparameters, dtype, input kind and seed.

    shapes: (tensor name, shape or None) in forward's order; None marks an absent optional tensor
        (a conv2d or linear case without bias).
    hparams: (name, value) for every hyperparameter of the layer, pairs as (h, w) tuples.
    values: the kind of generated input ("normal", or a special-value kind such as "ties").
    tolerance: overrides of the tolerance rule from the case file, as (key, value) pairs.
    """

    layer: str
    id: str
    dtype: str
    seed: int
    shapes: tuple[tuple[str, Shape | None], ...]
    hparams: tuple[tuple[str, Any], ...]
    values: str = "normal"
    source: str = ""
    tolerance: tuple[tuple[str, float], ...] = ()

    @property
    def shape_map(self) -> dict[str, Shape | None]:
        return dict(self.shapes)

    @property
    def hparam_map(self) -> dict[str, Any]:
        return dict(self.hparams)

    @property
    def tolerance_map(self) -> dict[str, float]:
        return dict(self.tolerance)


def format_value(value: Any) -> str:
    """A hyperparameter value as it appears in a case id: (2, 2) -> '2', (3, 2) -> '3x2'."""
    if isinstance(value, tuple):
        if len(set(value)) == 1:
            return str(value[0])
        return "x".join(str(v) for v in value)
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "none"
    return str(value)


def case_id(layer: str, hparams: dict[str, Any], shapes: dict[str, Shape | None], dtype: str,
            values: str, kernel: tuple[int, ...] | str | None = None, extra: Sequence[str] = ()) -> str:
    """A readable id that names everything that distinguishes the case.

    For example ``conv2d[s2-p1-d2-g1-k3x3-nobias-2x4x9x7-o6-f32]``. ``kernel`` is the kernel size,
    or a tag for what the hyperparameters and shapes do not show (``nostats``). ``extra``: further
    parts after the shapes (a hidden size, a mask kind), for layers whose input shape does not say all.
    """
    parts = [id_part(name, value) for name, value in hparams.items()]
    if kernel is not None:
        parts.append(kernel if isinstance(kernel, str) else "k" + "x".join(str(k) for k in kernel))
    if "bias" in shapes and shapes["bias"] is None:
        parts.append("noaffine" if "weight" in shapes and shapes["weight"] is None else "nobias")
    parts.append("x".join(str(s) for s in shapes["input"]))
    if shapes.get("weight") is not None:
        # output channels / features: not in the input shape (conv_transpose2d's weight is (C_in, C_out/groups, ...))
        weight = shapes["weight"]
        parts.append(f"o{weight[1] * hparams['groups'] if layer == 'conv_transpose2d' else weight[0]}")
    parts.extend(extra)
    if values != "normal":
        parts.append(values)
    parts.append(dtype_tag(dtype))
    return f"{layer}[{'-'.join(parts)}]"


def id_part(name: str, value: Any) -> str:
    """How one hyperparameter appears in a case id: stride (2, 2) -> 's2'."""
    return f"{_ABBREVIATIONS.get(name, name)}{format_value(value)}"


def dtype_tag(dtype: str) -> str:
    """The last part of a case id: f32 or f64."""
    return "f32" if dtype == "float32" else "f64"


def case_seed(case_identifier: str, base_seed: int) -> int:
    """A seed derived from the id, so a case's inputs do not depend on which other cases run."""
    return (zlib.crc32(case_identifier.encode()) ^ (base_seed * 0x9E3779B1)) & 0xFFFFFFFF
