"""Seeded inputs of the recurrent, attention, extra activation and weighted loss layers.

Special values, by kind:

- ``zeros``: exact zeros at the kink of elu, selu and prelu (torch takes the negative branch at 0);
  probabilities of exactly 0 in kl_div's target (``0 * log 0 = 0``);
- ``large``: |x| up to hundreds (overflow in a naive exp); recurrent inputs 2.5 times larger, so
  gates run into saturation (not so far that 1 - tanh**2 loses all its digits in float64);
- ``bounds``: hardtanh inputs exactly at min_val and max_val (no gradient there in torch);
- ``threshold``: softplus inputs with ``beta * x`` exactly at the threshold (still the smooth
  formula in torch) and just above it;
- ``ties``: l1-type losses with ``input == target`` (gradient 0), multi_margin_loss scores on a
  coarse grid so margin terms are exactly 0 (no gradient);
- ``kinks``: smooth_l1 / huber inputs and targets on a 0.25 grid, so ``|input - target|`` hits 0
  and the threshold exactly;
- ``ignored``: targets equal to ``ignore_index`` (at least one target is always kept);
- ``masked_rows``: attention rows whose every key is masked out (torch gives zeros there).

binary_cross_entropy and cross_entropy draw their input and target exactly as before they had
weights, so their older cases keep their inputs.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..specs import LAYERS
from .case import Case

__all__ = ["SEQLOSS_VALUE_KINDS", "seqloss_inputs"]

_N, _Z, _L = "normal", "zeros", "large"
SEQLOSS_VALUE_KINDS: dict[str, tuple[str, ...]] = {
    "gelu": (_N, _L), "elu": (_N, _Z, _L), "selu": (_N, _Z, _L), "softplus": (_N, _L, "threshold"),
    "silu": (_N, _L), "hardtanh": (_N, "bounds", "below_sentinels", "near_max", "tiny", "mixed_magnitudes"), "prelu": (_N, _Z),
    "nll_loss": (_N, "ignored"), "cross_entropy": (_N, _L, "ignored"), "binary_cross_entropy": (_N, "edges"),
    "l1_loss": (_N, "ties"), "smooth_l1_loss": (_N, "ties", "kinks"), "huber_loss": (_N, "ties", "kinks"),
    "kl_div": (_N, _Z), "multi_margin_loss": (_N, "ties"),
    **{name: (_N, _L) for name in ("rnn_tanh_cell", "lstm_cell", "gru_cell", "rnn_tanh", "lstm")},
    "scaled_dot_product_attention": (_N, "masked_rows"), "multi_head_attention": (_N, "masked_rows"),
}

Array = np.ndarray
Draw = Callable[[np.random.Generator, Case, tuple[int, ...]], Array]


def _log_softmax(x: Array, axis: int) -> Array:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def seqloss_inputs(case: Case, rng: np.random.Generator, plain_input: Draw, plain_target: Callable[..., Array]
                   ) -> dict[str, Array | None]:
    """The tensors of one case of these layers, by name, in forward's order.

    plain_input / plain_target: the generic draws of refcheck.cases.inputs (binary_cross_entropy
    and cross_entropy keep using them, so their older cases keep their values).
    """
    spec = LAYERS[case.layer]
    shapes, hp = case.shape_map, case.hparam_map
    dtype = np.dtype(case.dtype)
    drawn: dict[str, Array | None] = {}
    for name in spec.tensors:
        shape = shapes[name]
        if shape is None:
            drawn[name] = None
        elif spec.family == "recurrent":
            drawn[name] = _recurrent(rng, case, name, shape, shapes)
        elif spec.family == "attention":
            drawn[name] = _attention(rng, case, name, shape)
        elif name == "input":
            drawn[name] = _input(rng, case, shape, hp, plain_input)
        elif name == "target":
            drawn[name] = _target(rng, case, shape, drawn["input"], hp, plain_target)
        else:  # loss weights (positive) and prelu's weight (either sign)
            drawn[name] = rng.uniform(-0.5, 0.5, shape) if case.layer == "prelu" else rng.uniform(0.2, 2.0, shape)
    return {name: value if value is None or name in spec.integer or value.dtype == np.bool_ else value.astype(dtype)
            for name, value in drawn.items()}


def _recurrent(rng, case: Case, name: str, shape, shapes) -> Array:
    if name == "input":
        return rng.standard_normal(shape) * (2.5 if case.values == "large" else 1.0)
    if name in ("hx", "cx", "h0", "c0"):
        return rng.standard_normal(shape) * 0.5
    bound = 1.0 / np.sqrt(shapes["weight_hh"][1])  # torch's default init range
    return rng.uniform(-bound, bound, shape)


def _attention(rng, case: Case, name: str, shape) -> Array:
    if name == "attn_mask":
        return _mask(rng, case, shape)
    if name.endswith("weight"):
        return rng.standard_normal(shape) / np.sqrt(shape[1])
    if name.endswith("bias"):
        return rng.standard_normal(shape) * 0.1
    return rng.standard_normal(shape)


def _mask(rng, case: Case, shape) -> Array:
    """Boolean or additive; scaled_dot_product_attention's True takes part, torch.nn's True masks out."""
    kind = _mask_kind(case)
    masked = rng.random(shape) < 0.3
    if case.values == "masked_rows":
        masked[..., 0, :] = True  # the first query row of every (batch, head) sees no key
    if kind == "additive":
        additive = rng.standard_normal(shape)
        additive[masked] = -np.inf
        return additive
    return ~masked if case.layer == "scaled_dot_product_attention" else masked


def _mask_kind(case: Case) -> str:
    """The id names the mask kind (``mask-additive``, ``mask-bool``, ...); the shapes cannot."""
    return "additive" if "-mask-additive-" in case.id else "bool"


def _input(rng, case: Case, shape, hp, plain_input: Draw) -> Array:
    kind = case.values
    if case.layer in ("nll_loss", "kl_div"):
        return _log_softmax(rng.standard_normal(shape), axis=1 if case.layer == "nll_loss" and len(shape) > 1 else -1)
    if case.layer == "multi_margin_loss" and kind == "ties":
        return rng.integers(-2, 3, size=shape) / 2.0
    if kind in ("ties", "kinks"):
        return rng.integers(-8, 9, size=shape) / 4.0
    if kind == "bounds":
        x = rng.standard_normal(shape) * 1.5
        where = rng.random(shape)
        x[where < 0.2] = hp["min_val"]
        x[where > 0.8] = hp["max_val"]
        return x
    if kind == "threshold":
        x = rng.standard_normal(shape) * 5.0
        at = hp["threshold"] / hp["beta"]
        where = rng.random(shape)
        x[where < 0.25] = at
        x[where > 0.75] = at + 0.5
        return x
    if kind == "zeros" and case.layer == "kl_div":
        kind = "normal"
    if kind == "ignored":
        kind = "normal"
    plain = ("normal", "zeros", "large", "edges", "below_sentinels", "near_max", "tiny", "mixed_magnitudes")
    return plain_input(rng, case, shape) if kind in plain else rng.standard_normal(shape)


def _target(rng, case: Case, shape, input: Array, hp, plain_target) -> Array:
    layer = case.layer
    if layer == "binary_cross_entropy":
        return plain_target(rng, case, shape, input.shape)
    if layer in ("nll_loss", "cross_entropy", "multi_margin_loss"):
        classes = input.shape[-1] if layer == "multi_margin_loss" or input.ndim == 1 else input.shape[1]
        target = np.asarray(rng.integers(0, classes, size=shape).astype(np.int64))
        if case.values == "ignored":
            target = np.where(rng.random(shape) < 0.3, hp["ignore_index"], target)
        if "ignore_index" in hp and target.size and np.all(target == hp["ignore_index"]):
            target.flat[0] = (hp["ignore_index"] + 1) % classes if 0 <= hp["ignore_index"] < classes else 0
        return np.asarray(target, dtype=np.int64)
    if layer == "kl_div":
        if hp["log_target"]:
            return _log_softmax(rng.standard_normal(shape), axis=-1)
        target = np.exp(_log_softmax(rng.standard_normal(shape), axis=-1))
        if case.values == "zeros":
            target[rng.random(shape) < 0.3] = 0.0
        return target
    if case.values == "ties":
        target = rng.standard_normal(shape)
        same = rng.random(shape) < 0.3
        target[same] = input[same]
        return target
    if case.values == "kinks":
        return rng.integers(-8, 9, size=shape) / 4.0
    return rng.standard_normal(shape)
