"""Specs of batch_norm, layer_norm, group_norm, instance_norm, dropout and embedding.

Running statistics and dropout's keep mask are explicit tensors: batch_norm and instance_norm take
``running_mean`` and ``running_var`` (optional where torch allows None) and return the updated ones
as the extra outputs ``new_running_mean`` and ``new_running_var``, which are compared but get no
upstream gradient; dropout takes its boolean keep ``mask`` as a second input. The torch calls are
the wrappers in :mod:`refcheck.oracle.wrappers_norm` (torch updates running statistics in place and
draws dropout's mask itself).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .layer_specs import Hyper, InvalidConfig, LayerSpec

__all__ = ["NORM_SPECS"]

Shape = tuple[int, ...]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfig(message)


def _channel_params(shapes: Mapping[str, Shape | None], names: tuple[str, ...], channels: int) -> None:
    for name in names:
        if shapes.get(name) is not None:
            _check(tuple(shapes[name]) == (channels,), f"{name} shape {shapes[name]} != ({channels},)")


def _with_stats(shapes: Mapping[str, Shape | None], out: Shape) -> dict[str, Shape | None]:
    return {"output": out, "new_running_mean": shapes.get("running_mean"),
            "new_running_var": shapes.get("running_var")}


def _batch_norm_shape(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> dict[str, Shape | None]:
    shape = tuple(shapes["input"])
    _check(len(shape) >= 2, f"batch_norm input must be (N, C, *), got {shape}")
    _channel_params(shapes, ("running_mean", "running_var", "weight", "bias"), shape[1])
    if hp["training"]:
        _check(shape[0] * math.prod(shape[2:]) > 1,
               f"Expected more than 1 value per channel when training, got input size {shape}")
    else:
        _check(shapes.get("running_mean") is not None and shapes.get("running_var") is not None,
               "running_mean and running_var must be defined in evaluation mode")
    return _with_stats(shapes, shape)


def _instance_norm_shape(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> dict[str, Shape | None]:
    shape = tuple(shapes["input"])
    _check(len(shape) >= 2, f"instance_norm input must be (N, C, *), got {shape}")
    _channel_params(shapes, ("running_mean", "running_var", "weight", "bias"), shape[1])
    if hp["use_input_stats"]:
        _check(math.prod(shape[2:]) > 1, f"Expected more than 1 spatial element when training, got input size {shape}")
    else:
        _check(shapes.get("running_mean") is not None and shapes.get("running_var") is not None,
               "Expected running_mean and running_var to be defined when use_input_stats is false")
    return _with_stats(shapes, shape)


def _layer_norm_shape(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> Shape:
    shape, normalized = tuple(shapes["input"]), tuple(hp["normalized_shape"])
    _check(len(normalized) >= 1 and shape[len(shape) - len(normalized):] == normalized and len(shape) >= len(normalized),
           f"normalized_shape {normalized} is not the trailing shape of the input {shape}")
    for name in ("weight", "bias"):
        if shapes.get(name) is not None:
            _check(tuple(shapes[name]) == normalized, f"{name} shape {shapes[name]} != {normalized}")
    return shape


def _group_norm_shape(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> Shape:
    shape = tuple(shapes["input"])
    groups = hp["num_groups"]
    _check(len(shape) >= 2, f"group_norm input must be (N, C, *), got {shape}")
    _check(groups >= 1 and shape[1] % groups == 0,
           f"Expected number of channels in input to be divisible by num_groups, got {shape} and num_groups={groups}")
    _channel_params(shapes, ("weight", "bias"), shape[1])
    _check(shape[0] * (shape[1] // groups) * math.prod(shape[2:]) > 1,
           f"Expected more than 1 value per channel when training, got input size {shape}")
    return shape


def _dropout_shape(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> Shape:
    _check(0.0 <= hp["p"] <= 1.0, f"dropout probability has to be between 0 and 1, but got {hp['p']}")
    _check(tuple(shapes["mask"]) == tuple(shapes["input"]), "mask must have the input's shape")
    return tuple(shapes["input"])


def _embedding_shape(shapes: Mapping[str, Shape | None], hp: Mapping[str, Any]) -> Shape:
    rows, dim = shapes["weight"]
    padding_idx = hp["padding_idx"]
    _check(padding_idx is None or -rows <= padding_idx < rows, "Padding_idx must be within num_embeddings")
    return (*shapes["input"], dim)


_STATS_OPTIONAL = frozenset({"running_mean", "running_var", "weight", "bias"})
_AFFINE_OPTIONAL = frozenset({"weight", "bias"})
_STATS_OUTPUTS = ("output", "new_running_mean", "new_running_var")
_WRAPPERS = "refcheck.oracle.wrappers_norm."
_EPS = Hyper("eps", 1e-5)

NORM_SPECS = (
    LayerSpec("batch_norm", "norm", ("input", "running_mean", "running_var", "weight", "bias"),
              ("input", "weight", "bias"), (Hyper("training", True), Hyper("momentum", 0.1), _EPS),
              _batch_norm_shape, optional=_STATS_OPTIONAL, torch_function=_WRAPPERS + "batch_norm",
              outputs=_STATS_OUTPUTS, differentiable_outputs=("output",)),
    LayerSpec("layer_norm", "norm", ("input", "weight", "bias"), ("input", "weight", "bias"),
              (Hyper("normalized_shape", None), _EPS), _layer_norm_shape, optional=_AFFINE_OPTIONAL,
              torch_function=_WRAPPERS + "layer_norm"),
    LayerSpec("group_norm", "norm", ("input", "weight", "bias"), ("input", "weight", "bias"),
              (Hyper("num_groups", None), _EPS), _group_norm_shape, optional=_AFFINE_OPTIONAL,
              torch_function=_WRAPPERS + "group_norm"),
    LayerSpec("instance_norm", "norm", ("input", "running_mean", "running_var", "weight", "bias"),
              ("input", "weight", "bias"), (Hyper("use_input_stats", True), Hyper("momentum", 0.1), _EPS),
              _instance_norm_shape, optional=_STATS_OPTIONAL, torch_function=_WRAPPERS + "instance_norm",
              outputs=_STATS_OUTPUTS, differentiable_outputs=("output",)),
    LayerSpec("dropout", "dropout", ("input", "mask"), ("input",), (Hyper("p", 0.5), Hyper("training", True)),
              _dropout_shape, boolean=frozenset({"mask"}), torch_function=_WRAPPERS + "dropout"),
    LayerSpec("embedding", "embedding", ("input", "weight"), ("weight",), (Hyper("padding_idx", None),),
              _embedding_shape, integer=frozenset({"input"})),
)
