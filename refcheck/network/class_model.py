"""A CS231n-style model class (untrusted side): ``params`` dict, ``loss(X, y) -> (loss, grads)``.

The class is built from its own constructor (the model file's ``args``, plus ``dtype`` and
``reg`` when the constructor takes them), then its ``params`` are replaced by refcheck's seeded
ones, converted from torch's layout to the layout the model file states (CS231n affine weights
are ``(in, out)``). Gradients come back in the class's layout and are converted to torch's.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from .model_file import NetworkModel

__all__ = ["ClassModel", "find_model_class"]


def find_model_class(module: ModuleType | None, name: str) -> type | None:
    """The class called ``name`` in the user's module (or a module it imported), else None."""
    if module is None or not name:
        return None
    found = getattr(module, name, None)
    return found if isinstance(found, type) else None


def _to_class(value: np.ndarray, layout: tuple[int, ...] | None) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(value, layout)) if layout else np.array(value, copy=True)


def _to_torch(value: Any, layout: tuple[int, ...] | None) -> Any:
    if layout is None or not isinstance(value, np.ndarray) or value.ndim != len(layout):
        return value
    return np.transpose(value, np.argsort(layout))


class ClassModel:
    """The user's class, built and loaded with refcheck's parameters."""

    def __init__(self, cls: type, model: NetworkModel, dtype: str) -> None:
        self.model = model
        self.origin = f"class {cls.__name__}"
        kwargs = dict(model.class_args)
        try:
            accepted = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            accepted = {}
        if "dtype" in accepted:
            kwargs["dtype"] = np.dtype(dtype).type
        if "reg" in accepted:
            kwargs["reg"] = model.reg
        self.instance = cls(**kwargs)
        if hasattr(self.instance, "reg"):
            self.instance.reg = model.reg
        if not isinstance(getattr(self.instance, "params", None), dict):
            raise TypeError(f"{cls.__name__} has no params dict")

    def load(self, params: Mapping[str, np.ndarray]) -> None:
        """Replace the instance's parameters (shapes must match the class's own)."""
        own = self.instance.params
        for name, value in params.items():
            layout = self.model.layouts.get(name)
            converted = _to_class(value, layout)
            entry, tensor = self.model.parameters[name]
            if name not in own:
                raise KeyError(f"params has no {name!r} (it has {', '.join(map(str, own))}); the model file maps "
                               f"{entry.label}'s {tensor} to {name!r}")
            current = np.shape(own[name])
            if current != converted.shape:
                raise ValueError(f"params[{name!r}] has shape {current}, but {entry.label}'s {tensor} is "
                                 f"{converted.shape} in the layout the model file gives")
            own[name] = converted

    def loss_and_grads(self, x: np.ndarray, target: np.ndarray) -> tuple[Any, dict[str, Any]]:
        """``loss(X, y)``; gradients by parameter name, in torch's layout."""
        returned = self.instance.loss(np.array(x, copy=True), np.array(target, copy=True))
        if not isinstance(returned, tuple) or len(returned) != 2 or not isinstance(returned[1], dict):
            raise TypeError(f"loss(X, y) must return (loss, grads dict), got {type(returned).__name__}")
        loss, grads = returned
        return loss, {name: _to_torch(grads.get(name), self.model.layouts.get(name))
                      for name in self.model.parameters}
