"""Shapes and seeded inputs of the optimizer update rules (``sgd``, ``rmsprop``, ``adam``, ``adamw``).

A case's tensors are the initial ``param`` (standard normal) and ``grads``, one gradient per step
stacked on a leading axis of length :data:`refcheck.specs.optim_specs.STEPS`. Each step's gradient
has its own scale, ``STEP_SCALES`` (uneven, so that AMSGrad's running maximum differs from
``exp_avg_sq`` and momentum carries old steps into new ones), times the kind's scale:

- ``normal``: scale 1;
- ``zeros``: the first gradient has a third of its entries exactly 0, and every later gradient is
  all zeros (the state still moves the parameter: momentum, Adam's moments, weight decay);
- ``tiny``: scale 1e-30 (in float32, squares underflow to 0 and the denominators are eps alone);
- ``huge``: scale 1e30 in float64 and 1e18 in float32, whose squares (1e36) still fit in float32,
  as they do for torch.

Everything is drawn in float64 from ``np.random.default_rng(case.seed)`` and cast to the case's dtype.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..specs import LayerSpec
from ..specs.optim_specs import STEPS
from .case import Case

__all__ = ["OPTIM_KINDS", "OPTIM_SHAPE_DEFAULTS", "OPTIM_SHAPE_PARAMS", "STEP_SCALES", "optim_id_shapes",
           "optim_inputs", "optim_shapes"]

OPTIM_SHAPE_PARAMS = {"optimizer": ("param_shape",)}
OPTIM_SHAPE_DEFAULTS = {"param_shape": (3, 4)}
OPTIM_KINDS = ("normal", "zeros", "tiny", "huge")
STEP_SCALES = (1.0, 0.1, 2.0, 0.05, 1.0)
_KIND_SCALE = {"normal": 1.0, "zeros": 1.0, "tiny": 1e-30}
_HUGE = {"float64": 1e30, "float32": 1e18}

assert len(STEP_SCALES) == STEPS


def optim_shapes(spec: LayerSpec, p: Mapping[str, Any], hparams: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """``{"param": shape, "grads": (STEPS, *shape)}``; no extra id tag."""
    value = p["param_shape"]
    shape = (value,) if isinstance(value, int) else tuple(value)
    return {"param": shape, "grads": (STEPS, *shape)}, None


def optim_id_shapes(shapes: Mapping[str, Any]) -> dict[str, Any]:
    """What a case id shows of the shapes: the parameter's shape (the gradients' follows from it)."""
    return {"input": shapes["param"]}


def optim_inputs(case: Case) -> dict[str, np.ndarray | None]:
    """The initial parameter and the gradient of every step, in the case's dtype."""
    rng = np.random.default_rng(case.seed)
    shape = case.shape_map["param"]
    param = rng.standard_normal(shape)
    grads = np.stack([rng.standard_normal(shape) * scale for scale in STEP_SCALES])
    if case.values == "zeros":
        first = grads[0]
        first[rng.random(shape) < 1 / 3] = 0.0
        grads[1:] = 0.0
    scale = _HUGE[case.dtype] if case.values == "huge" else _KIND_SCALE[case.values]
    dtype = np.dtype(case.dtype)
    return {"param": param.astype(dtype), "grads": (grads * scale).astype(dtype)}
