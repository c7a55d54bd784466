"""Torch-free self-consistency: does an implementation's backward agree with its own forward?

For each differentiable tensor t, with the upstream gradient g and a random direction v, the
backward's claim ``<grad_t, v>`` is compared with the central difference of ``<g, forward(t)>``
along v, all in float64. A mismatch says "your backward disagrees with your own forward",
independently of whether the forward agrees with torch.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..adapters import LayerFunctions, call_forward_backward, named_outputs
from ..specs import LayerSpec

__all__ = ["SELFCHECK_LIMIT", "self_consistency"]

SELFCHECK_LIMIT = 1e-5
"""Relative disagreement above which the self-check reports a mismatch."""


def _generic_point(spec: LayerSpec, tensors: Mapping[str, np.ndarray | None], rng: np.random.Generator) -> dict:
    """The case's inputs in float64, nudged off ties and kinks so a finite difference is meaningful."""
    point: dict[str, np.ndarray | None] = {}
    for name, value in tensors.items():
        if value is None or name in spec.integer or np.asarray(value).dtype == np.bool_:
            point[name] = value  # class indices and boolean masks stay as they are
            continue
        wide = np.asarray(value, dtype=np.float64)
        finite = np.isfinite(wide)  # -inf in an additive mask stays -inf
        scale = np.maximum(1.0, np.abs(np.where(finite, wide, 0.0)))
        step = rng.uniform(-1e-2, 1e-2, size=wide.shape) * scale
        if bool(np.all(wide[finite] >= 0)):
            step = np.abs(step)  # a tensor without negative values (a target distribution) stays so
        nudged = np.where(finite, wide + step, wide)
        if spec.name == "binary_cross_entropy" and name == "input":
            nudged = np.clip(nudged, 0.05, 0.95)
        point[name] = nudged
    return point


def self_consistency(spec: LayerSpec, functions: LayerFunctions,
                     tensors: Mapping[str, np.ndarray | None], hparams: Mapping[str, Any],
                     gradients: Mapping[str, np.ndarray], seed: int) -> dict[str, float | str]:
    """Relative disagreement per gradient (``grad_<tensor>`` -> float), or a reason string.

    ``gradients``: the upstream gradient of each differentiable output, by output name.
    Calls the implementation on float64 copies; exceptions become the reason (not raised).
    """
    rng = np.random.default_rng([seed, 2])
    point = _generic_point(spec, tensors, rng)
    upstream = {name: np.asarray(g, dtype=np.float64) for name, g in gradients.items()}
    unit = _unit(point)

    def loss(values: Mapping[str, Any]) -> float:
        """<upstream, forward(values)> / unit: finite even where the outputs are near float64's maximum."""
        returned, _ = functions.forward(*[None if values[n] is None else np.array(values[n], copy=True)
                                          for n in spec.tensors], **hparams)
        outputs = named_outputs(spec, returned, functions.origin)
        return float(sum(np.sum(np.asarray(outputs[name], dtype=np.float64) / unit * g)
                         for name, g in upstream.items()))

    try:
        analytic = call_forward_backward(spec, functions, point, hparams, upstream)
    except Exception as error:  # the user's code: any failure is a finding, not a crash
        return {"reason": f"self-check not possible: {type(error).__name__}: {error}"}
    results: dict[str, float | str] = {}
    for name in spec.differentiable:
        grad = analytic.get(f"grad_{name}")
        if point[name] is None or grad is None:
            continue
        try:
            results[f"grad_{name}"] = _directional_disagreement(loss, point, name, grad, rng, unit,
                                                                _held(spec, name, point[name], hparams))
        except Exception as error:  # one malformed gradient must not hide the others' checks
            results[f"grad_{name}"] = f"self-check not possible: {type(error).__name__}: {error}"
    return results


def _unit(point: Mapping[str, Any]) -> float:
    """A power of two at least the largest magnitude of the floating inputs (exact to divide by)."""
    largest = 1.0
    for value in point.values():
        if value is not None and np.asarray(value).dtype.kind == "f":
            finite = np.abs(np.asarray(value)[np.isfinite(value)])
            largest = max(largest, float(finite.max(initial=0.0)))
    return float(2.0 ** min(np.ceil(np.log2(largest)), 1023))


def _held(spec: LayerSpec, name: str, value: np.ndarray, hparams: Mapping[str, Any]) -> np.ndarray | None:
    """Elements whose gradient is zero by the layer's definition though the forward depends on them
    (the embedding's padding row, as torch defines it): left out of the direction, else a correct
    backward would disagree with its own forward there. None: no such elements."""
    padding_idx = hparams.get("padding_idx")
    if spec.name != "embedding" or name != "weight" or padding_idx is None:
        return None
    held = np.zeros(value.shape, dtype=bool)
    held[int(padding_idx) % value.shape[0]] = True
    return held


def _directional_disagreement(loss: Callable[[Mapping[str, Any]], float], point: Mapping[str, Any], name: str,
                              grad: Any, rng: np.random.Generator, unit: float = 1.0,
                              held: np.ndarray | None = None) -> float:
    """|central difference - <grad, v>| relative to their size, for a random direction v.

    Each element steps relative to its own magnitude (at least 1), so inputs spread over many
    decades step across no kink of their small elements. ``loss`` is divided by ``unit``, and so is
    the direction: no sum overflows near float64's maximum.
    """
    gradient = np.asarray(grad, dtype=np.float64)
    elementwise = np.maximum(1.0, np.abs(np.where(np.isfinite(point[name]), point[name], 0.0))) / unit
    direction = rng.standard_normal(point[name].shape) * elementwise
    if held is not None:
        direction = np.where(held, 0.0, direction)
    analytic = float(np.sum(gradient * direction))
    disagreements = []
    # A kink of a piecewise-linear layer (max, relu) between the two evaluation points spoils one
    # difference; a real disagreement persists at a 100 times smaller step.
    for relative_step in (1e-6, 1e-8):
        step = relative_step * unit
        plus = {**point, name: point[name] + step * direction}
        minus = {**point, name: point[name] - step * direction}
        numeric = (loss(plus) - loss(minus)) / (2 * relative_step)
        # Scale by the gradient's size along all directions, so tiny dot products do not inflate it.
        scale = max(abs(numeric), abs(analytic), float(np.linalg.norm(gradient * elementwise)) * 1e-3, 1e-12)
        disagreements.append(abs(numeric - analytic) / scale)
        if disagreements[-1] <= SELFCHECK_LIMIT:
            break
    return min(disagreements)
