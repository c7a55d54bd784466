"""Tensor shapes of the convnd, pooling1d, norm, dropout and embedding families, from a choice of
space parameters (see :func:`refcheck.cases.expand.build_case`).

Each builder returns ``(shapes, tag)``: the tensor shapes by name (None for an absent optional
tensor) and what the case id needs beyond hyperparameters and the input shape (the kernel size,
missing running statistics, the embedding width).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..specs import InvalidConfig, LayerSpec

__all__ = ["FAMILY_SHAPES", "SHAPE_DEFAULTS", "SHAPE_PARAMS"]

Shape = tuple[int, ...]

SHAPE_PARAMS = {
    "convnd": ("batch", "channels", "input_size", "kernel_size", "bias"),
    "pooling1d": ("batch", "channels", "input_size"),
    "norm": ("input_shape", "affine", "running_stats"),
    "dropout": ("input_shape",),
    "embedding": ("input_shape", "num_embeddings", "embedding_dim"),
}
SHAPE_DEFAULTS = {"affine": True, "running_stats": True, "num_embeddings": 10, "embedding_dim": 4}


def _sizes(value: Any, ndim: int) -> Shape:
    if isinstance(value, int):
        return (value,) * ndim
    if len(value) != ndim:
        raise InvalidConfig(f"{value!r} does not give {ndim} spatial sizes")
    return tuple(value)


def _as_shape(value: Any) -> Shape:
    return (value,) if isinstance(value, int) else tuple(value)


def _convnd(spec: LayerSpec, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    ndim = 3 if spec.name == "conv3d" else 1 if spec.name == "conv1d" else 2
    c_in, c_out = (p["channels"],) * 2 if isinstance(p["channels"], int) else _as_shape(p["channels"])
    kernel = _sizes(p.get("kernel_size", 3), ndim)
    groups = hparams["groups"]
    if c_in % groups or c_out % groups:
        raise InvalidConfig(f"groups={groups} must divide in_channels={c_in} and out_channels={c_out}")
    # conv_transpose2d's weight is (C_in, C_out / groups, k...); the convolutions' (C_out, C_in / groups, k...).
    weight = (c_in, c_out // groups, *kernel) if spec.name == "conv_transpose2d" else (c_out, c_in // groups, *kernel)
    shapes = {"input": (p["batch"], c_in, *_sizes(p["input_size"], ndim)), "weight": weight,
              "bias": (c_out,) if p["bias"] else None}
    return shapes, kernel


def _pooling1d(spec: LayerSpec, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    return {"input": (p["batch"], p["channels"], *_sizes(p["input_size"], 1))}, None


def _norm(spec: LayerSpec, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    shape = _as_shape(p["input_shape"])
    if spec.name == "layer_norm":
        params = tuple(hparams["normalized_shape"])
    else:
        if len(shape) < 2:
            raise InvalidConfig(f"{spec.name} input must be (N, C, *)")
        params = (shape[1],)
    shapes: dict[str, Any] = {"input": shape}
    tag = None
    if "running_mean" in spec.tensors:
        stats = params if p["running_stats"] else None
        shapes.update(running_mean=stats, running_var=stats)
        tag = None if p["running_stats"] else "nostats"
    shapes.update(weight=params if p["affine"] else None, bias=params if p["affine"] else None)
    return shapes, tag


def _dropout(spec: LayerSpec, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    shape = _as_shape(p["input_shape"])
    return {"input": shape, "mask": shape}, None


def _embedding(spec: LayerSpec, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    return ({"input": _as_shape(p["input_shape"]), "weight": (p["num_embeddings"], p["embedding_dim"])},
            f"dim{p['embedding_dim']}")


FAMILY_SHAPES: dict[str, Callable[[LayerSpec, Mapping[str, Any], Mapping[str, Any]], tuple[dict[str, Any], Any]]] = {
    "convnd": _convnd, "pooling1d": _pooling1d, "norm": _norm, "dropout": _dropout, "embedding": _embedding,
}
