"""The names people give their layers: class and function name families, and near misses.

A class name is compared after normalising it (lower case, no underscores, no ``layer`` suffix), so
``Conv2D``, ``Conv2d``, ``ConvLayer`` and ``conv_2d`` are one name. Families list the spellings seen
in courses, textbooks and small libraries; a match is only a candidate: discovery still checks it
on a probe call (:mod:`refcheck.adapters.probe`) before using it.
"""
from __future__ import annotations

import difflib
import inspect
from types import ModuleType

from ..specs import LAYERS

__all__ = ["CLASS_FAMILIES", "class_layer", "expected_names", "layer_named", "near_misses", "normalise",
           "public_names"]

# contract layer -> normalised class names (see normalise()).
CLASS_FAMILIES: dict[str, tuple[str, ...]] = {
    "conv2d": ("conv2d", "conv", "convolution", "convolutional", "convolution2d", "conv2dlayer", "convnet"),
    "max_pool2d": ("maxpool2d", "maxpool", "maxpooling", "maxpooling2d", "pooling", "pool", "pooling2d",
                   "maxpoolingl"),
    "avg_pool2d": ("avgpool2d", "avgpool", "avgpooling", "averagepooling", "averagepooling2d", "avgpooling2d",
                   "meanpool", "meanpooling"),
    "lp_pool2d": ("lppool2d", "lppool"),
    "adaptive_avg_pool2d": ("adaptiveavgpool2d",),
    "adaptive_max_pool2d": ("adaptivemaxpool2d",),
    "linear": ("linear", "affine", "dense", "fullyconnected", "fc", "fullyconnectedlayer", "innerproduct"),
    "flatten": ("flatten", "flat"),
    "relu": ("relu", "rectifiedlinear", "rectifier"),
    "leaky_relu": ("leakyrelu", "lrelu"),
    "sigmoid": ("sigmoid", "logistic"),
    "tanh": ("tanh", "tanhactivation", "hyperbolictangent"),
    "softmax": ("softmax",),
    "log_softmax": ("logsoftmax",),
    "mse_loss": ("mseloss", "mse", "meansquarederror", "l2loss", "squaredloss"),
    "binary_cross_entropy": ("bceloss", "binarycrossentropy", "binarycrossentropyloss"),
    "binary_cross_entropy_with_logits": ("bcewithlogitsloss", "sigmoidcrossentropy", "sigmoidbinarycrossentropy"),
    "cross_entropy": ("crossentropyloss", "crossentropy", "softmaxwithloss", "softmaxcrossentropy",
                      "softmaxcrossentropyloss", "softmaxloss", "categoricalcrossentropy"),
}
_BY_NAME = {name: layer for layer, names in CLASS_FAMILIES.items() for name in names}


def normalise(name: str) -> str:
    """``Conv2DLayer`` -> ``conv2d``; ``Max_Pooling`` -> ``maxpooling``."""
    text = name.lower().replace("_", "")
    for suffix in ("layer", "module"):
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
    return text


def class_layer(name: str) -> str | None:
    """The contract layer a class name stands for, or None."""
    return _BY_NAME.get(normalise(name))


def layer_named(name: str) -> str | None:
    """The layer a user probably means by ``name``: a class name (BatchNorm2d, CrossEntropyLoss), a
    layer name without its underscores (batchnorm), or a close spelling (maxpool2d)."""
    from .objects_convnorm import CONVNORM_CLASS_FAMILIES  # here: that module imports this one

    normal = normalise(name)
    convnorm = {alias: layer for layer, aliases in CONVNORM_CLASS_FAMILIES.items() for alias in aliases}
    found = class_layer(name) or convnorm.get(normal) or {normalise(layer): layer for layer in LAYERS}.get(normal)
    if found:
        return found
    close = difflib.get_close_matches(name.lower(), list(LAYERS), n=1, cutoff=0.6)
    return close[0] if close else None


def public_names(module: ModuleType) -> list[str]:
    """The functions and classes a module defines (its own, not its imports), sorted."""
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or not (inspect.isfunction(value) or inspect.isclass(value)):
            continue
        home = getattr(value, "__module__", "") or ""
        if home == module.__name__ or home.startswith(module.__name__ + "."):
            names.append(name)
    return sorted(names)


_CLASS_EXAMPLES = {
    "conv2d": "Conv2d, Conv, Convolution", "max_pool2d": "MaxPool2d, MaxPooling2D, Pooling",
    "avg_pool2d": "AvgPool2d, AveragePooling2D", "linear": "Linear, Affine, Dense", "relu": "ReLU, Relu",
    "cross_entropy": "CrossEntropyLoss, SoftmaxWithLoss", "mse_loss": "MSELoss, MeanSquaredError",
}


def expected_names(layer: str) -> list[str]:
    """Names refcheck would have recognised as ``layer`` (for messages): the two functions, then
    example class names ('' where the class is simply named as in torch.nn)."""
    return [f"{layer}_forward", f"{layer}_backward", _CLASS_EXAMPLES.get(layer, "")]


def near_misses(layer: str, available: list[str]) -> list[tuple[str, str]]:
    """(user's name, the name it looks like) for names close to what ``layer`` needs.

    ``conv2d_foward`` looks like ``conv2d_forward``; class names are compared normalised.
    """
    misses = []
    wanted = [f"{layer}_forward", f"{layer}_backward"]
    for name in available:
        if name in wanted:
            continue
        close = difflib.get_close_matches(name, wanted, n=1, cutoff=0.8)
        if close:
            misses.append((name, close[0]))
            continue
        families = CLASS_FAMILIES.get(layer, ())
        close = difflib.get_close_matches(normalise(name), families, n=1, cutoff=0.8)
        if close and normalise(name) not in families:
            misses.append((name, close[0]))
    return misses

