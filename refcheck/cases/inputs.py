"""Seeded inputs for a case, with the special values that expose common mistakes.

Every array is generated in float64 from ``np.random.default_rng(case.seed)`` and then cast to the
case's dtype; the oracle's float64 reference runs on the *cast* values, so a float32 case is
compared against the exact answer for the float32 inputs it was given.
"""
from __future__ import annotations

import numpy as np

from ..specs import LAYERS
from .case import Case
from .inputs_seqloss import SEQLOSS_VALUE_KINDS, seqloss_inputs
from .shapes_seqloss import SEQLOSS_LAYERS
from .inputs_convnorm import INPUT_MAKERS
from .inputs_convnorm import VALUE_KINDS as _CONVNORM_KINDS
from .inputs_optim import OPTIM_KINDS, optim_inputs

__all__ = ["MAGNITUDE_KINDS", "VALUE_KINDS", "make_inputs", "make_upstream_gradient", "make_upstream_gradients"]

MAGNITUDE_KINDS = ("below_sentinels", "near_max", "tiny", "mixed_magnitudes")
"""Kinds that reach every magnitude (see :func:`magnitude_values`)."""
_MAX_POOLS = ("normal", "ties", "very_negative", *MAGNITUDE_KINDS)
_SATURATING = ("normal", "large")
# softmax and log_softmax stay finite on these (not near_max: max - min would overflow there).
_SOFTMAX = ("normal", "large", "below_sentinels", "tiny", "mixed_magnitudes")
VALUE_KINDS: dict[str, tuple[str, ...]] = {name: ("normal",) for name in LAYERS}
VALUE_KINDS.update({
    "max_pool2d": _MAX_POOLS,
    "adaptive_max_pool2d": ("normal", "ties", *MAGNITUDE_KINDS),
    "relu": ("normal", "zeros", *MAGNITUDE_KINDS),
    "leaky_relu": ("normal", "zeros", *MAGNITUDE_KINDS),
    "flatten": ("normal", *MAGNITUDE_KINDS),
    "sigmoid": _SATURATING,
    "tanh": _SATURATING,
    "softmax": _SOFTMAX,
    "log_softmax": _SOFTMAX,
    "binary_cross_entropy_with_logits": _SATURATING,
    "binary_cross_entropy": ("normal", "edges"),
    "cross_entropy": _SATURATING,
    **_CONVNORM_KINDS,
})
VALUE_KINDS.update(SEQLOSS_VALUE_KINDS)
VALUE_KINDS.update({name: OPTIM_KINDS for name, spec in LAYERS.items() if spec.is_update_rule})
"""Input kinds per layer. ties: values on a coarse grid so windows hold equal maxima (torch routes
the gradient to the first); very_negative: all inputs far below zero, so zero padding instead of
-inf padding shows; zeros: exact zeros at the ReLU kink; large: |x| up to hundreds (overflow in
naive exp); edges: probabilities exactly 0 and 1 for binary cross-entropy; below_sentinels,
near_max, tiny, mixed_magnitudes: see :func:`magnitude_values`. The update rules' kinds
(zeros, tiny, huge gradients) are described in :mod:`.inputs_optim`."""


def magnitude_values(rng: np.random.Generator, shape: tuple[int, ...], kind: str, dtype: str) -> np.ndarray:
    """Values far from the unit scale, where hand-written code hides constants.

    below_sentinels: every value below -1e9 (-3e9 to -1e12), so below the -1e5, -1e6 or -1e9 a
        running maximum is often started at; near_max: random signs, magnitudes between a quarter
        and a half of the dtype's largest finite value (room for a slope of 1.5, never inf);
        tiny: random signs around 1e-30 (1e-32 to 1e-28, normal numbers in float32);
        mixed_magnitudes: random signs, magnitudes spread evenly over the decades 1e-30 to 1e30.
    """
    signs = rng.choice([-1.0, 1.0], size=shape)
    if kind == "below_sentinels":
        return -(10.0 ** rng.uniform(9.5, 12.0, size=shape))
    if kind == "near_max":
        return signs * float(np.finfo(dtype).max) * rng.uniform(0.25, 0.5, size=shape)
    if kind == "tiny":
        return signs * 10.0 ** rng.uniform(-32.0, -28.0, size=shape)
    if kind == "mixed_magnitudes":
        return signs * 10.0 ** rng.uniform(-30.0, 30.0, size=shape)
    raise ValueError(f"unknown magnitude kind {kind!r}")


def _activation(rng: np.random.Generator, shape: tuple[int, ...], kind: str, dtype: str = "float64") -> np.ndarray:
    if kind in MAGNITUDE_KINDS:
        return magnitude_values(rng, shape, kind, dtype)
    if kind == "ties":
        # A grid of 5 levels: most pooling windows hold a tie for their maximum.
        return rng.integers(-2, 3, size=shape).astype(np.float64) / 2.0
    if kind == "very_negative":
        return rng.standard_normal(shape) - 1000.0
    if kind == "zeros":
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 0.3] = 0.0
        return x
    if kind == "large":
        # Ordinary values, with a third of the entries at |x| in [50, 500]: a naive exp overflows
        # there, while the ordinary entries keep the gradient's scale meaningful in float32.
        x = rng.standard_normal(shape) * 3.0
        big = rng.random(shape) < 1 / 3
        x[big] = rng.choice([-1.0, 1.0], size=int(big.sum())) * rng.uniform(50.0, 500.0, size=int(big.sum()))
        return x
    return rng.standard_normal(shape)


def make_inputs(case: Case) -> dict[str, np.ndarray | None]:
    """The tensors handed to forward, by name, in forward's order (None for an absent bias).

    Shapes follow ``case.shapes``; floating tensors have the case's dtype, cross_entropy's
    target is int64 class indices.
    """
    if case.layer in INPUT_MAKERS:
        return INPUT_MAKERS[case.layer](case)
    if LAYERS[case.layer].is_update_rule:
        return optim_inputs(case)
    rng = np.random.default_rng(case.seed)
    if case.layer in SEQLOSS_LAYERS:
        return seqloss_inputs(case, rng, _input, _target)
    spec = LAYERS[case.layer]
    dtype = np.dtype(case.dtype)
    shapes = case.shape_map
    tensors: dict[str, np.ndarray | None] = {}
    for name in spec.tensors:
        shape = shapes[name]
        if shape is None:
            tensors[name] = None
            continue
        if name == "input":
            value = _input(rng, case, shape)
        elif name == "target":
            value = _target(rng, case, shape, shapes["input"])
        elif name == "weight":
            # Scaled like a default torch init, so outputs stay O(1).
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) / np.sqrt(fan_in)
        else:
            value = rng.standard_normal(shape) * 0.5
        tensors[name] = value if name in spec.integer else value.astype(dtype)
    return tensors


def _input(rng: np.random.Generator, case: Case, shape: tuple[int, ...]) -> np.ndarray:
    if case.layer == "binary_cross_entropy":
        p = rng.uniform(0.02, 0.98, size=shape)
        if case.values == "edges":
            mask = rng.random(shape)
            p[mask < 0.2] = 0.0
            p[mask > 0.8] = 1.0
        return p
    x = _activation(rng, shape, case.values, case.dtype)
    if case.layer == "lp_pool2d" and case.hparam_map["norm_type"] % 2 == 1:
        # An odd power of a negative window sum has no real root: torch returns NaN there.
        x = np.abs(x) + 0.1
    return x


def _target(rng: np.random.Generator, case: Case, shape: tuple[int, ...], input_shape: tuple[int, ...]) -> np.ndarray:
    if case.layer == "cross_entropy":
        return rng.integers(0, input_shape[1], size=shape).astype(np.int64)
    if case.layer == "binary_cross_entropy" and case.values == "edges":
        # Hard 0/1 targets: p == t at an edge is finite; p != t hits torch's log clamp.
        return (rng.random(shape) < 0.5).astype(np.float64)
    if case.layer in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
        return rng.uniform(0.0, 1.0, size=shape)
    return rng.standard_normal(shape)


def make_upstream_gradient(case: Case, shape: tuple[int, ...]) -> np.ndarray:
    """A random upstream gradient of the output's shape (0-d for a loss), never all ones.

    All ones would hide a missing kernel flip everywhere but the border.
    """
    rng = np.random.default_rng([case.seed, 1])
    return rng.standard_normal(shape).astype(np.dtype(case.dtype))


def make_upstream_gradients(case: Case) -> dict[str, np.ndarray]:
    """One random upstream gradient per differentiable output present in the case, by output name.

    The first output's gradient is :func:`make_upstream_gradient`'s; each further output draws
    from its own seeded stream.
    """
    spec = LAYERS[case.layer]
    shapes = spec.output_shapes(case.shape_map, case.hparam_map)
    gradients = {}
    for index, name in enumerate(spec.differentiable_outputs):
        if shapes.get(name) is None:
            continue
        if index == 0:
            gradients[name] = make_upstream_gradient(case, shapes[name])
        else:
            rng = np.random.default_rng([case.seed, 1, index])
            gradients[name] = rng.standard_normal(shapes[name]).astype(np.dtype(case.dtype))
    return gradients
