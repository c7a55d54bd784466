"""Specs of the extra activations (gelu ... prelu) and losses (nll_loss ... multi_margin_loss), and
of the loss layers with class or element weights: cross_entropy and binary_cross_entropy.

Shape rules follow torch's: they raise :class:`InvalidConfig` exactly where torch rejects a
configuration (checked against torch in tests/test_cases_seqloss.py). Losses take
``reduction='none'`` here (the output is then the per-element or per-sample loss); the older
losses (mse_loss, binary_cross_entropy_with_logits) keep ``'mean'`` and ``'sum'``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .layer_specs import Hyper, InvalidConfig, LayerSpec

__all__ = ["ELEMENTWISE_SPECS"]

Shape = tuple[int, ...]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfig(message)


def _same_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    return tuple(shapes["input"])


def _hardtanh_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    _check(hp["min_val"] <= hp["max_val"], "min_val cannot be greater than max_val")
    return tuple(shapes["input"])


def _gelu_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    _check(hp["approximate"] in ("none", "tanh"), f"approximate {hp['approximate']!r} is not 'none' or 'tanh'")
    return tuple(shapes["input"])


def _prelu_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    shape, weight = tuple(shapes["input"]), tuple(shapes["weight"])
    _check(len(weight) == 1, "prelu weight must be 1-D")
    channels = shape[1] if len(shape) >= 2 else 1
    _check(weight[0] in (1, channels),
           f"prelu weight has {weight[0]} parameters; the input has {channels} channels")
    return shape


def _reduced(shape: Shape, hp: Mapping[str, Any], reductions: tuple[str, ...] = ("mean", "sum", "none")) -> Shape:
    _check(hp["reduction"] in reductions, f"reduction {hp['reduction']!r} is not one of {reductions}")
    return shape if hp["reduction"] == "none" else ()


def _pointwise_loss_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    _check(tuple(shapes["target"]) == tuple(shapes["input"]), "target shape must equal input shape")
    if "beta" in hp:
        _check(hp["beta"] >= 0, "smooth_l1_loss does not support negative values for beta")
    if "delta" in hp:
        _check(hp["delta"] > 0, "huber_loss does not support non-positive values for delta")
    return _reduced(tuple(shapes["input"]), hp)


def _kl_div_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    _check(tuple(shapes["target"]) == tuple(shapes["input"]), "target shape must equal input shape")
    return _reduced(tuple(shapes["input"]), hp, ("mean", "sum", "none", "batchmean"))


def _bce_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    shape = tuple(shapes["input"])
    _check(tuple(shapes["target"]) == shape, "target shape must equal input shape")
    weight = shapes.get("weight")
    if weight is not None:
        padded = (1,) * (len(shape) - len(weight)) + tuple(weight)
        _check(len(weight) <= len(shape) and all(w in (1, s) for w, s in zip(padded, shape)),
               f"weight {tuple(weight)} does not broadcast to the input's shape {shape}")
    return _reduced(shape, hp)


def _class_target_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    """nll_loss / cross_entropy: input (N, C, d...) or (C,), target (N, d...) or ()."""
    shape, target = tuple(shapes["input"]), tuple(shapes["target"])
    _check(len(shape) >= 1, "input must have a class axis")
    expected = () if len(shape) == 1 else (shape[0], *shape[2:])
    _check(target == expected, f"target {target} should be {expected} for input {shape}")
    classes = shape[0] if len(shape) == 1 else shape[1]
    if shapes.get("weight") is not None:
        _check(tuple(shapes["weight"]) == (classes,), f"weight should be ({classes},)")
    if "label_smoothing" in hp:
        _check(0.0 <= hp["label_smoothing"] <= 1.0, "label_smoothing must be between 0.0 and 1.0")
    return _reduced(target, hp)


def _multi_margin_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    shape, target = tuple(shapes["input"]), tuple(shapes["target"])
    _check(len(shape) in (1, 2), "multi_margin_loss input must be (N, C) or (C,)")
    _check(target == shape[:-1], f"target {target} should be {shape[:-1]}")
    _check(hp["p"] in (1, 2), "only p == 1 and p == 2 supported")
    if shapes.get("weight") is not None:
        _check(tuple(shapes["weight"]) == shape[-1:], f"weight should be ({shape[-1]},)")
    return _reduced(target, hp)


_REDUCTION = Hyper("reduction", "mean")
_LOSS_TENSORS = ("input", "target")
_WEIGHTED = ("input", "target", "weight")
_OPTIONAL_WEIGHT = frozenset({"weight"})
_TARGET_INDICES = frozenset({"target"})
_WRAPPERS = "refcheck.oracle.wrappers_losses"

ELEMENTWISE_SPECS = (
    LayerSpec("gelu", "activation", ("input",), ("input",), (Hyper("approximate", "none"),), _gelu_shape),
    LayerSpec("elu", "activation", ("input",), ("input",), (Hyper("alpha", 1.0),), _same_shape),
    LayerSpec("selu", "activation", ("input",), ("input",), (), _same_shape),
    LayerSpec("softplus", "activation", ("input",), ("input",), (Hyper("beta", 1.0), Hyper("threshold", 20.0)),
              _same_shape),
    LayerSpec("silu", "activation", ("input",), ("input",), (), _same_shape),
    LayerSpec("hardtanh", "activation", ("input",), ("input",), (Hyper("min_val", -1.0), Hyper("max_val", 1.0)),
              _hardtanh_shape),
    LayerSpec("prelu", "activation", ("input", "weight"), ("input", "weight"), (), _prelu_shape),
    # cross_entropy and binary_cross_entropy existed before their weights and extra hyperparameters:
    # those are left out of case ids at their defaults, so the older cases keep their ids.
    LayerSpec("binary_cross_entropy", "loss", _WEIGHTED, ("input",), (_REDUCTION,), _bce_shape,
              optional=_OPTIONAL_WEIGHT),
    LayerSpec("cross_entropy", "loss", _WEIGHTED, ("input",),
              (_REDUCTION, Hyper("ignore_index", -100, in_id_at_default=False),
               Hyper("label_smoothing", 0.0, in_id_at_default=False)),
              _class_target_shape, optional=_OPTIONAL_WEIGHT, integer=_TARGET_INDICES,
              torch_function=f"{_WRAPPERS}.cross_entropy"),
    LayerSpec("nll_loss", "loss", _WEIGHTED, ("input",), (_REDUCTION, Hyper("ignore_index", -100)),
              _class_target_shape, optional=_OPTIONAL_WEIGHT, integer=_TARGET_INDICES),
    LayerSpec("l1_loss", "loss", _LOSS_TENSORS, ("input",), (_REDUCTION,), _pointwise_loss_shape),
    LayerSpec("smooth_l1_loss", "loss", _LOSS_TENSORS, ("input",), (_REDUCTION, Hyper("beta", 1.0)),
              _pointwise_loss_shape),
    LayerSpec("huber_loss", "loss", _LOSS_TENSORS, ("input",), (_REDUCTION, Hyper("delta", 1.0)),
              _pointwise_loss_shape),
    LayerSpec("kl_div", "loss", _LOSS_TENSORS, ("input",), (_REDUCTION, Hyper("log_target", False)),
              _kl_div_shape),
    # torch's multi_margin_loss takes weight after p and margin: the wrapper puts it third, as here.
    LayerSpec("multi_margin_loss", "loss", _WEIGHTED, ("input",),
              (_REDUCTION, Hyper("p", 1), Hyper("margin", 1.0)), _multi_margin_shape,
              optional=_OPTIONAL_WEIGHT, integer=_TARGET_INDICES,
              torch_function=f"{_WRAPPERS}.multi_margin_loss"),
)
