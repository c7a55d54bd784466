"""Object-style layers (``forward(x)`` / ``backward(dout)`` methods) mapped onto the contract.

An object-style layer is a class whose ``forward(x)`` returns the output and whose
``backward(dout)`` returns the input gradient, leaving parameter gradients on attributes. Loss
classes take ``forward(input, target)`` and ``backward(dout=None)``.

Discovery: a module-level ``REFCHECK_LAYERS = {"conv2d": MyConv, ...}`` if the module has one,
otherwise classes named as in torch.nn (``Conv2d`` -> conv2d, ``MaxPool2d`` -> max_pool2d, ...)
that have both ``forward`` and ``backward``.

Calling convention used by the adapted functions:

- construction with keywords named as torch.nn's constructor (``Conv2d(in_channels=...,
  out_channels=..., kernel_size=(kh, kw), stride=..., bias=...)``), passing only the keywords the
  constructor accepts (``inspect.signature``); the hyperparameters it accepts define ``accepted``;
- parameters injected afterwards as attributes ``weight`` and ``bias`` (torch layout); a missing
  bias is passed as ``bias=False`` if the constructor takes ``bias``, otherwise as zeros whose
  gradient is dropped;
- parameter gradients read from the first attribute present (and not None) among
  ``grad_weight, dweight, dW, dw, weight_grad`` and ``grad_bias, dbias, db, bias_grad``;
- a fresh object per forward call, held by the cache, so no state leaks between cases.

Results pass through unchanged: no clipping, no dtype or shape casts.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .contract import LayerFunctions

__all__ = [
    "BIAS_GRAD_ATTRIBUTES",
    "TORCH_CLASS_NAMES",
    "WEIGHT_GRAD_ATTRIBUTES",
    "adapt_objects",
    "discover_layer_classes",
]

WEIGHT_GRAD_ATTRIBUTES = ("grad_weight", "dweight", "dW", "dw", "weight_grad")
BIAS_GRAD_ATTRIBUTES = ("grad_bias", "dbias", "db", "bias_grad")

# torch.nn class name -> contract layer name.
TORCH_CLASS_NAMES = {
    "Conv2d": "conv2d",
    "MaxPool2d": "max_pool2d",
    "AvgPool2d": "avg_pool2d",
    "LPPool2d": "lp_pool2d",
    "AdaptiveAvgPool2d": "adaptive_avg_pool2d",
    "AdaptiveMaxPool2d": "adaptive_max_pool2d",
    "Linear": "linear",
    "Flatten": "flatten",
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "MSELoss": "mse_loss",
    "BCELoss": "binary_cross_entropy",
    "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
    "CrossEntropyLoss": "cross_entropy",
}

_LOSSES = frozenset({"mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                     "cross_entropy"})

# Contract hyperparameters of each layer; the torch.nn constructors take the same names.
_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "conv2d": ("stride", "padding", "dilation", "groups"),
    "max_pool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                   "divisor_override"),
    "lp_pool2d": ("norm_type", "kernel_size", "stride", "ceil_mode"),
    "adaptive_avg_pool2d": ("output_size",),
    "adaptive_max_pool2d": ("output_size",),
    "linear": (),
    "flatten": ("start_dim", "end_dim"),
    "relu": (),
    "leaky_relu": ("negative_slope",),
    "sigmoid": (),
    "tanh": (),
    "softmax": ("dim",),
    "log_softmax": ("dim",),
    **{loss: ("reduction",) for loss in _LOSSES},
}


@dataclass(frozen=True)
class _ObjectCache:
    """The layer object that ran forward, and whether the case has a bias."""

    layer: Any
    has_bias: bool


def discover_layer_classes(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """Contract layer name -> layer class (or factory) found in ``module``.

    ``REFCHECK_LAYERS`` wins when present (its keys must be contract layer names); otherwise
    classes named as in torch.nn that define both ``forward`` and ``backward``.
    """
    registry = getattr(module, "REFCHECK_LAYERS", None)
    if registry is not None:
        if not isinstance(registry, Mapping):
            raise TypeError(f"REFCHECK_LAYERS must be a dict of layer name -> class, got {registry!r}")
        unknown = sorted(set(registry) - set(_HYPERPARAMETERS))
        if unknown:
            raise ValueError(f"REFCHECK_LAYERS has unknown layer names {unknown}; "
                             f"known: {sorted(_HYPERPARAMETERS)}")
        return dict(registry)
    return {
        layer: cls
        for name, layer in TORCH_CLASS_NAMES.items()
        if inspect.isclass(cls := getattr(module, name, None))
        and callable(getattr(cls, "forward", None))
        and callable(getattr(cls, "backward", None))
    }


def _constructor_keywords(factory: Callable[..., Any]) -> frozenset[str] | None:
    """Keywords the constructor accepts, or None when it takes ``**kwargs`` (anything)."""
    parameters = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters if p.kind in keyword_kinds)


def _read_gradient(layer: Any, attributes: tuple[str, ...], what: str) -> Any:
    """The first of ``attributes`` set (not None) on ``layer``; an error naming them all if none."""
    for attribute in attributes:
        value = getattr(layer, attribute, None)
        if value is not None:
            return value
    raise AttributeError(f"{type(layer).__name__}.backward left no {what} gradient: "
                         f"none of {', '.join(attributes)} is set")


def _takes_no_argument(method: Callable[..., Any]) -> bool:
    return not inspect.signature(method).parameters


def adapt_objects(module: ModuleType) -> dict[str, LayerFunctions]:
    """Contract-style LayerFunctions for the object-style layer classes found in ``module``.

    Parameters
    ----------
    module : module
        A module with ``REFCHECK_LAYERS`` or classes named as in torch.nn.

    Returns
    -------
    dict of str to LayerFunctions
        Contract layer name -> adapted functions, with origin ``"object: <class name>"``.
    """
    return {layer: _adapt_class(layer, factory)
            for layer, factory in discover_layer_classes(module).items()}


def _adapt_class(layer: str, factory: Callable[..., Any]) -> LayerFunctions:
    keywords = _constructor_keywords(factory)
    hyperparameters = _HYPERPARAMETERS[layer]
    accepted = frozenset(h for h in hyperparameters if keywords is None or h in keywords)
    origin = f"object: {getattr(factory, '__qualname__', repr(factory))}"

    def construct(**candidates: Any) -> Any:
        # Hyperparameters outside `accepted` are left out: they are supported only at their default.
        return factory(**{k: v for k, v in candidates.items() if keywords is None or k in keywords})

    if layer in ("conv2d", "linear"):
        return _parametric(layer, construct, keywords, accepted, origin)
    if layer in _LOSSES:
        return _loss(layer, construct, accepted, origin)

    def forward(x, **hparams):
        obj = construct(**hparams)
        return obj.forward(x), _ObjectCache(obj, has_bias=False)

    def backward(dout, cache: _ObjectCache):
        return cache.layer.backward(dout)

    return LayerFunctions(layer, forward, backward, accepted=accepted, origin=origin)


def _parametric(layer: str, construct: Callable[..., Any], keywords: frozenset[str] | None,
                accepted: frozenset[str], origin: str) -> LayerFunctions:
    """conv2d / linear: shapes become constructor arguments, parameters are injected."""
    takes_bias_flag = keywords is None or "bias" in keywords

    def forward(x, weight, bias, **hparams):
        if layer == "conv2d":
            sizes = {"in_channels": int(x.shape[1]), "out_channels": int(weight.shape[0]),
                     "kernel_size": tuple(int(k) for k in weight.shape[2:])}
        else:
            sizes = {"in_features": int(weight.shape[1]), "out_features": int(weight.shape[0])}
        obj = construct(**sizes, **hparams, bias=bias is not None)
        obj.weight = weight
        if bias is not None:
            obj.bias = bias
        elif not takes_bias_flag:
            # The class cannot be told there is no bias: a zero bias computes the same output.
            obj.bias = np.zeros(weight.shape[0], dtype=weight.dtype)
        return obj.forward(x), _ObjectCache(obj, has_bias=bias is not None)

    def backward(dout, cache: _ObjectCache):
        obj = cache.layer
        grad_input = obj.backward(dout)
        grad_weight = _read_gradient(obj, WEIGHT_GRAD_ATTRIBUTES, "weight")
        grad_bias = _read_gradient(obj, BIAS_GRAD_ATTRIBUTES, "bias") if cache.has_bias else None
        return grad_input, grad_weight, grad_bias

    return LayerFunctions(layer, forward, backward, accepted=accepted, origin=origin)


def _loss(layer: str, construct: Callable[..., Any], accepted: frozenset[str],
          origin: str) -> LayerFunctions:
    """Loss objects: forward(input, target) -> scalar, backward(dout=None) -> d input."""

    def forward(input, target, **hparams):
        obj = construct(**hparams)
        return obj.forward(input, target), _ObjectCache(obj, has_bias=False)

    def backward(dout, cache: _ObjectCache):
        obj = cache.layer
        if _takes_no_argument(obj.backward):
            # Such a backward returns d(loss)/d(input); chain rule with the upstream 0-d gradient.
            return obj.backward() * dout
        return obj.backward(dout)

    return LayerFunctions(layer, forward, backward, accepted=accepted, origin=origin)
