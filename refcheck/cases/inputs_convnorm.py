"""Seeded inputs of the norm, dropout and embedding layers, with their special values.

- Normalisations: ``near_constant`` makes every value noise of scale 1e-3 around 0, so each
  normalised group's variance (about 1e-6) lies below eps (1e-5 or 1e-3): an eps outside the
  square root shows. (Around 0 rather than a larger constant: subtracting the mean of values like
  3 +- 1e-3 loses digits in any implementation, torch's included, and would measure that loss
  instead of the layer.) The running variance is positive (uniform in [0.5, 2]).
- dropout: the boolean keep mask is drawn as Bernoulli(1 - p), as torch draws it.
- embedding: class indices with repeats (``repeated`` draws from 3 rows other than the padding
  row only, so the weight gradient must accumulate); the padding row, when there is one, is always
  among the indices.

Everything is drawn from ``np.random.default_rng(case.seed)``; floating tensors are cast to the
case's dtype.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..specs import LAYERS
from .case import Case

__all__ = ["INPUT_MAKERS", "VALUE_KINDS"]

_NORMS = ("batch_norm", "layer_norm", "group_norm", "instance_norm")
VALUE_KINDS: dict[str, tuple[str, ...]] = {
    **{name: ("normal", "near_constant") for name in _NORMS},
    "max_pool1d": ("normal", "ties", "very_negative", "below_sentinels", "near_max", "tiny", "mixed_magnitudes"),
    "embedding": ("normal", "repeated"),
}


def _norm_input(rng: np.random.Generator, case: Case, shape: tuple[int, ...]) -> np.ndarray:
    if case.values == "near_constant":
        return rng.standard_normal(shape) * 1e-3
    return rng.standard_normal(shape)


def _norm(case: Case) -> dict[str, np.ndarray | None]:
    rng = np.random.default_rng(case.seed)
    dtype = np.dtype(case.dtype)
    shapes = case.shape_map
    tensors: dict[str, np.ndarray | None] = {}
    for name in LAYERS[case.layer].tensors:
        shape = shapes[name]
        if shape is None:
            tensors[name] = None
            continue
        if name == "input":
            value = _norm_input(rng, case, shape)
        elif name == "running_var":
            value = rng.uniform(0.5, 2.0, size=shape)
        elif name == "weight":
            value = 1.0 + 0.5 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape) * 0.5
        tensors[name] = value.astype(dtype)
    return tensors


def _dropout(case: Case) -> dict[str, np.ndarray | None]:
    rng = np.random.default_rng(case.seed)
    shape = case.shape_map["input"]
    x = rng.standard_normal(shape).astype(np.dtype(case.dtype))
    mask = rng.random(shape) >= case.hparam_map["p"]
    return {"input": x, "mask": mask}


def _embedding(case: Case) -> dict[str, np.ndarray | None]:
    rng = np.random.default_rng(case.seed)
    shapes = case.shape_map
    rows, dim = shapes["weight"]
    padding_idx = case.hparam_map["padding_idx"]
    # Repeats among rows other than the padding one (whose gradient is zero either way), so that a
    # gradient assigned instead of accumulated always shows.
    candidates = np.array([r for r in range(rows) if padding_idx is None or r != padding_idx % rows] or [0])
    pool = (rng.choice(candidates, size=min(3, len(candidates)), replace=False) if case.values == "repeated"
            else np.arange(rows))
    indices = rng.choice(pool, size=shapes["input"]).astype(np.int64)
    if padding_idx is not None and indices.size:
        indices.flat[int(rng.integers(indices.size))] = padding_idx % rows
    weight = rng.standard_normal((rows, dim)).astype(np.dtype(case.dtype))
    return {"input": indices, "weight": weight}


INPUT_MAKERS: dict[str, Callable[[Case], dict[str, np.ndarray | None]]] = {
    **{name: _norm for name in _NORMS}, "dropout": _dropout, "embedding": _embedding,
}
"""Layers whose inputs are made here rather than by :func:`refcheck.cases.inputs.make_inputs`' default."""
