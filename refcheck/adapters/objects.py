"""Object-style layers (``forward(x)`` / ``backward(dout)`` methods) mapped onto the contract.

An object-style layer is a class whose ``forward(x)`` returns the output and whose
``backward(dout)`` returns the input gradient, leaving parameter gradients on the object. Loss
classes take ``forward(input, target)`` and ``backward(dout=None)``.

Discovery: a module-level ``REFCHECK_LAYERS = {"conv2d": MyConv, ...}`` if the module has one,
otherwise classes whose names are in a layer's name family (``Conv2d``, ``Conv``, ``Convolution``,
``Affine``, ``Dense``, ``MaxPooling2D``, ``SoftmaxWithLoss``..., see :mod:`refcheck.adapters.names`)
that have both ``forward`` and ``backward``.

Calling convention used by the adapted functions:

- a fresh object per forward call, built from its own constructor signature
  (:mod:`refcheck.adapters.construct`): shapes, hyperparameters, the parameters themselves when
  the constructor takes them, a bias flag, a learning rate of 1;
- parameters written where the object keeps them, found by name then by size
  (:mod:`refcheck.adapters.params`); copies, so an object that updates its own weights changes
  nothing refcheck handed over; a forward that replaces them (lazy initialisation) runs again with
  them written back;
- parameter gradients read where the object leaves them, by name then by size; when backward
  applies an SGD step itself and keeps no gradient, the gradient is the parameter's change
  divided by the learning rate (said in the record's notes).

Results pass through unchanged: no clipping, no dtype or shape casts.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from ..specs import Unsupported
from .call_records import list_lengths, take_back_one_call
from .construct import LEARNING_RATE_ARGUMENTS, Constructor, plain_name
from .contract import LayerFunctions, accepted_keywords, user_name
from .optional_tensors import refusing_tensors
from .layouts import TORCH_LAYOUT, WEIGHT_AXES, Layout
from .names import class_layer
from .params import GRADIENT_NAMES, Slot, find_gradient, find_parameter

__all__ = ["BIAS_GRAD_ATTRIBUTES", "TORCH_CLASS_NAMES", "WEIGHT_GRAD_ATTRIBUTES", "adapt_objects",
           "discover_layer_classes", "object_functions"]

WEIGHT_GRAD_ATTRIBUTES = GRADIENT_NAMES["weight"]
BIAS_GRAD_ATTRIBUTES = GRADIENT_NAMES["bias"]

# torch.nn class name -> contract layer name (the family lists in names.py include these).
TORCH_CLASS_NAMES = {
    "Conv2d": "conv2d", "MaxPool2d": "max_pool2d", "AvgPool2d": "avg_pool2d", "LPPool2d": "lp_pool2d",
    "AdaptiveAvgPool2d": "adaptive_avg_pool2d", "AdaptiveMaxPool2d": "adaptive_max_pool2d", "Linear": "linear",
    "Flatten": "flatten", "ReLU": "relu", "LeakyReLU": "leaky_relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
    "Softmax": "softmax", "LogSoftmax": "log_softmax", "MSELoss": "mse_loss", "BCELoss": "binary_cross_entropy",
    "BCEWithLogitsLoss": "binary_cross_entropy_with_logits", "CrossEntropyLoss": "cross_entropy",
}
_LOSSES = frozenset({"mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy"})
_PARAMETRIC = frozenset({"conv2d", "linear"})
FORWARD_METHODS = ("forward", "forward_pass", "forward_propagation", "fprop", "__call__", "call")
BACKWARD_METHODS = ("backward", "backward_pass", "backward_propagation", "backprop", "bprop")
# torch.nn's class defaults where they differ from torch.nn.functional's (nn.Flatten starts at 1).
NN_DEFAULTS: dict[str, dict[str, Any]] = {"flatten": {"start_dim": 1}}


def method(cls: Any, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` that ``cls`` defines as a callable (``__call__`` only if the class or a
    base of its own defines it, as a Keras-style ``Layer`` base does around ``call``; every class
    is callable through its metaclass)."""
    for name in names:
        if name == "__call__" and not any("__call__" in vars(base) for base in getattr(cls, "__mro__", (cls,))
                                          if base is not object):
            continue
        if callable(getattr(cls, name, None)):
            return name
    return None


def discover_layer_classes(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """Contract layer name -> layer class (or factory) found in ``module``.

    ``REFCHECK_LAYERS`` wins when present (its keys must be contract layer names); otherwise
    classes named in a layer's family that define both a forward and a backward method.
    """
    registry = getattr(module, "REFCHECK_LAYERS", None)
    if registry is not None:
        if not isinstance(registry, Mapping):
            raise TypeError(f"REFCHECK_LAYERS must be a dict of layer name -> class, got {registry!r}")
        unknown = sorted(set(registry) - set(TORCH_CLASS_NAMES.values()))
        if unknown:
            raise ValueError(f"REFCHECK_LAYERS has unknown layer names {unknown}; "
                             f"known: {sorted(TORCH_CLASS_NAMES.values())}")
        return dict(registry)
    found: dict[str, Callable[..., Any]] = {}
    for name, cls in sorted(vars(module).items()):
        layer = class_layer(name) if inspect.isclass(cls) else None
        if layer and layer not in found and method(cls, FORWARD_METHODS) and method(cls, BACKWARD_METHODS):
            found[layer] = cls
    return found


def adapt_objects(module: ModuleType) -> dict[str, LayerFunctions]:
    """Contract-style LayerFunctions for the object-style layer classes found in ``module`` (torch layouts)."""
    return {layer: object_functions(layer, Constructor.of(factory, parametric=layer in _PARAMETRIC))
            for layer, factory in discover_layer_classes(module).items()}


@dataclass
class _ObjectCache:
    """The layer object that ran forward, and what backward needs to read its gradients."""

    layer: Any
    has_bias: bool = False
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    slots: dict[str, Slot | None] = field(default_factory=dict)


def _backward_call(bound: Callable[..., Any], dout: Any, learning_rate: float) -> Any:
    """Call backward with the upstream gradient, and a learning rate if it asks for one."""
    try:
        parameters = [p for p in inspect.signature(bound).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return bound(dout)
    if not parameters:
        return bound()
    if len(parameters) >= 2 and plain_name(parameters[1].name) in LEARNING_RATE_ARGUMENTS:
        return bound(dout, learning_rate)
    return bound(dout)


def _torch_shape(layout: Layout, tensor: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A user-layout shape in torch's layout."""
    if tensor == "weight" and layout.weight:
        axes = WEIGHT_AXES[layout.weight]
        return tuple(shape[list(axes).index(i)] for i in range(len(axes)))
    return shape


def object_functions(layer: str, constructor: Constructor, layout: Layout = TORCH_LAYOUT,
                     gradient_names: Mapping[str, tuple[str, ...]] | None = None,
                     parameter_names: Mapping[str, str] | None = None, learning_rate: float = 1.0) -> LayerFunctions:
    """LayerFunctions calling a class's objects; tensors arrive in ``layout`` (see layouts.with_layout)."""
    cls = constructor.factory
    forward_name = method(cls, FORWARD_METHODS) or "forward"
    backward_name = method(cls, BACKWARD_METHODS) or "backward"
    keywords = constructor.hyperparameters()
    hyper_names = _hyperparameters(layer)
    accepted = hyper_names if constructor.takes_kwargs and not constructor.targets else frozenset(
        h for h in hyper_names if h in keywords)
    origin = f"object: {constructor.name}"
    gradient_names = dict(gradient_names or {})
    parameter_names = dict(parameter_names or {})
    memo: dict[str, Slot | None] = {}
    notes: list[str] = []

    def build(values: dict[str, Any]) -> Any:
        return constructor.build({**values, "learning_rate": learning_rate})

    def loss_object(weight: Any, hparams: dict[str, Any]) -> Any:
        """The loss, given the case's class or element weights when it has some (as ``weight=``,
        torch.nn's keyword); a class that takes no such keyword cannot run that case."""
        if weight is None:
            return build(dict(hparams))
        named = accepted_keywords(cls)  # None: it takes **kwargs
        if named is not None and "weight" not in named:
            raise Unsupported(f"{user_name(origin)} takes no weight keyword; this case has class weights")
        return cls(**constructor.arguments({**hparams, "learning_rate": learning_rate}), weight=weight)

    def forward(*tensors, **hparams):
        x = tensors[0]
        if layer in _LOSSES:
            obj = loss_object(tensors[2] if len(tensors) > 2 else None, hparams)
            return getattr(obj, forward_name)(x, tensors[1]), _ObjectCache(obj)
        if layer not in _PARAMETRIC:
            obj = build(dict(hparams))
            return getattr(obj, forward_name)(x), _ObjectCache(obj)
        weight, bias = tensors[1], tensors[2]
        torch_weight = _torch_shape(layout, "weight", weight.shape)
        count = int(torch_weight[0])
        if layer == "conv2d":
            channel_axis = 3 if layout.activations == "NHWC" else (0 if layout.single_sample else 1)
            sizes = {"in_channels": int(x.shape[channel_axis]), "out_channels": count,
                     "kernel_size": tuple(int(k) for k in torch_weight[2:])}
        else:
            sizes = {"in_features": int(torch_weight[1]), "out_features": count}
        weight_copy = np.array(weight, copy=True)
        bias_copy = np.array(bias, copy=True) if bias is not None else np.zeros(count, dtype=weight.dtype)
        obj = build({**sizes, **hparams, "weight": weight_copy, "bias": bias_copy, "bias_flag": bias is not None})
        without_bias = bias is None and constructor.takes("bias_flag")
        slots = _place(obj, weight_copy, bias_copy, memo, parameter_names, without_bias)
        records = list_lengths(obj)
        output = getattr(obj, forward_name)(x)
        if slots["weight"] is not None and slots["weight"].read(obj) is not weight_copy:
            # Initialised its parameters in forward (lazily): write them back and run forward again,
            # without what the first call recorded for backward.
            take_back_one_call(obj, records)
            _place(obj, weight_copy, bias_copy, memo, parameter_names, without_bias)
            output = getattr(obj, forward_name)(x)
        return output, _ObjectCache(obj, bias is not None, weight_copy.copy(), bias_copy.copy(), slots)

    def backward(dout, cache: _ObjectCache):
        obj = cache.layer
        grad_input = _backward_call(getattr(obj, backward_name), dout, learning_rate)
        if layer in _LOSSES and not _takes_dout(getattr(obj, backward_name)):
            # Such a backward returns d(loss)/d(input); chain rule with the upstream 0-d gradient.
            return grad_input * dout
        if layer not in _PARAMETRIC:
            return grad_input
        grad_weight = _gradient(obj, "weight", cache.weight, cache.slots.get("weight"), memo,
                                gradient_names.get("weight", ()), learning_rate, notes)
        grad_bias = _gradient(obj, "bias", cache.bias, cache.slots.get("bias"), memo,
                              gradient_names.get("bias", ()), learning_rate, notes) if cache.has_bias else None
        return grad_input, grad_weight, grad_bias

    constraint = _form_constraint(constructor)
    named = accepted_keywords(cls)
    if layer in _LOSSES and named is not None and "weight" not in named:
        constraint = refusing_tensors(constraint, ("weight",), f"{user_name(origin)} takes no {{}} keyword")
    functions = LayerFunctions(layer, forward, backward, accepted=accepted, origin=origin, adapter="object",
                               fixed=NN_DEFAULTS.get(layer, {}), constraint=constraint)
    object.__setattr__(functions, "notes", notes)  # filled in as gradients are recovered
    return functions


def _form_constraint(constructor: Constructor):
    if not any(form in ("int", "numeric pair") for form in constructor.forms.values()):
        return None
    return constructor.unsupported


def _takes_dout(bound: Callable[..., Any]) -> bool:
    try:
        return bool(inspect.signature(bound).parameters)
    except (TypeError, ValueError):
        return True


def _hyperparameters(layer: str) -> frozenset[str]:
    from ..specs import layer_spec

    return frozenset(layer_spec(layer).hyper_names)


def _place(obj: Any, weight: np.ndarray, bias: np.ndarray, memo: dict[str, Slot | None],
           names: Mapping[str, str], built_without_bias: bool = False) -> dict[str, Slot | None]:
    """Write the parameters where ``obj`` keeps them (found once, then remembered).

    A slot found holding None (an object built without a bias, or not initialised yet) says
    nothing of what it holds otherwise (an array, a Parameter): it is looked for again next time.
    An object ``built_without_bias`` (its constructor told so) whose bias is None gets none
    written; otherwise a case without bias writes zeros (code that always adds one, or fills its
    parameters lazily)."""
    slots = {}
    for which, value in (("weight", weight), ("bias", bias)):
        key = f"parameter {which}"
        found = memo.get(key)
        if key not in memo:
            found = Slot.parse(names[which]) if which in names else find_parameter(obj, which, value.size)
            if found is None or which in names or found.read(obj) is not None:
                memo[key] = found
        if which == "bias" and built_without_bias and found is not None and found.read(obj) is None:
            slots[which] = None
            continue
        slot = found or Slot(which)
        existing = slot.read(obj) if found is not None else None
        shaped = value.reshape(existing.shape) if isinstance(existing, np.ndarray) and existing.size == value.size \
            and which == "bias" else value
        slot.write(obj, shaped)
        slots[which] = slot
    return slots


def _gradient(obj: Any, which: str, before: np.ndarray, slot: Slot | None, memo: dict[str, Slot | None],
              names: tuple[str, ...], learning_rate: float, notes: list[str]) -> Any:
    """The gradient ``obj.backward`` left for a parameter, or the one its SGD step implies."""
    key = f"gradient {which}"
    current = slot.read(obj) if slot is not None else None
    if key not in memo:
        # Decided once, on the first call (the probe case, whose sizes are all distinct): searching
        # by size again on later cases could pick an unrelated array of the same size.
        exclude = (current,) if current is not None else ()
        memo[key] = find_gradient(obj, which, before.size, exclude, names, parameter=slot)
    found = memo[key]
    if found is not None and found.read(obj) is not None:
        value = found.read(obj)
        return value.reshape(before.shape) if which == "bias" and np.size(value) == before.size else value
    if isinstance(current, np.ndarray) and current.size == before.size and not np.array_equal(
            current.reshape(before.shape), before):
        current = current.reshape(before.shape)
        note = f"{which} gradient recovered from the update backward applied (learning rate {learning_rate:g})"
        if note not in notes:
            notes.append(note)
        return ((before.astype(np.float64) - current.astype(np.float64)) / learning_rate).astype(before.dtype)
    raise AttributeError(f"{type(obj).__name__}.backward left no {which} gradient: none of "
                         f"{', '.join(names + GRADIENT_NAMES[which])} is set, and the {which} did not change; "
                         f"name it in a mapping (grad_{which} = \"...\")")
