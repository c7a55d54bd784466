"""Where a layer object keeps its parameters and leaves their gradients.

Parameters are found by name first (``W``, ``weights``, ``kernels``, ``params["W"]``...), then by
shape (the one array attribute shaped like the weight). Gradients likewise (``dW``,
``gradient_weights``, ``grads["W"]``, ``_gradient_bias``...), then by shape among the arrays that
are not the parameter itself. When backward applies an update itself and keeps no gradient, the
gradient is recovered from the parameter's change and the learning rate refcheck passed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .construct import plain_name

__all__ = ["GRADIENT_NAMES", "PARAMETER_NAMES", "Slot", "find_gradient", "find_parameter"]

PARAMETER_NAMES = {
    "weight": ("weight", "W", "w", "weights", "kernel", "kernels", "filters", "kernel_weights", "_weights", "_W"),
    "bias": ("bias", "b", "biases", "_bias", "_b", "bias_weights"),
}
GRADIENT_NAMES = {
    "weight": ("grad_weight", "dweight", "dW", "dw", "weight_grad", "gradient_weights", "_gradient_weights",
               "grad_W", "dweights", "weights_grad", "d_weight", "d_W", "dkernel", "dK", "dfilters",
               "gradient_weight", "weight_gradient", "dLdW", "dL_dW"),
    "bias": ("grad_bias", "dbias", "db", "bias_grad", "gradient_bias", "_gradient_bias", "grad_b", "dbiases",
             "biases_grad", "d_bias", "d_b", "bias_gradient", "dLdb", "dL_db"),
}
_CONTAINERS = ("params", "parameters", "param", "weights_dict", "_params")
_GRAD_CONTAINERS = ("grads", "gradients", "grad", "param_grads", "dparams", "_grads", "gradient")
_KEYS = {"weight": ("W", "w", "weight", "weights", "kernel", "kernels"), "bias": ("b", "bias", "biases")}


@dataclass(frozen=True)
class Slot:
    """Where one array lives on an object: ``obj.<attribute>`` or ``obj.<attribute>[<key>]``."""

    attribute: str
    key: str | None = None

    def read(self, obj: Any) -> Any:
        value = getattr(obj, self.attribute, None)
        if self.key is not None:
            return value.get(self.key) if isinstance(value, dict) else None
        return value

    def write(self, obj: Any, value: Any) -> None:
        if self.key is not None:
            getattr(obj, self.attribute)[self.key] = value
        else:
            setattr(obj, self.attribute, value)

    def __str__(self) -> str:
        return f"{self.attribute}[{self.key!r}]" if self.key is not None else self.attribute


def _attributes(obj: Any) -> dict[str, Any]:
    try:
        return dict(vars(obj))
    except TypeError:
        return {}


def _named(obj: Any, names: tuple[str, ...], containers: tuple[str, ...], keys: tuple[str, ...],
           unset: bool = False) -> Slot | None:
    """A slot holding an array under one of the names (``unset``: or holding None, not yet initialised)."""
    attributes = _attributes(obj)
    plain = {plain_name(k): k for k in attributes}

    def fits(value: Any) -> bool:
        return isinstance(value, np.ndarray) or (unset and value is None)

    for name in names:
        actual = name if name in attributes else plain.get(plain_name(name))
        if actual is not None and fits(attributes[actual]):
            return Slot(actual)
    for container in containers:
        mapping = attributes.get(container)
        if isinstance(mapping, dict):
            for key in keys:
                for candidate in (key, *[k for k in mapping if plain_name(str(k)) == plain_name(key)]):
                    if candidate in mapping and fits(mapping[candidate]):
                        return Slot(container, candidate)
    return None


def _by_size(obj: Any, size: int, exclude: tuple[Any, ...]) -> list[Slot]:
    slots = []
    for name, value in _attributes(obj).items():
        if isinstance(value, np.ndarray) and value.size == size and not any(value is e for e in exclude):
            slots.append(Slot(name))
        elif isinstance(value, dict):
            slots += [Slot(name, key) for key, item in value.items()
                      if isinstance(item, np.ndarray) and item.size == size and not any(item is e for e in exclude)]
    return slots


def find_parameter(obj: Any, which: str, size: int, exclude: tuple[Any, ...] = ()) -> Slot | None:
    """Where ``obj`` keeps its weight or bias: by name, else the one array of that size."""
    slot = _named(obj, PARAMETER_NAMES[which], _CONTAINERS, _KEYS[which], unset=True)
    if slot is not None and (slot.read(obj) is None or slot.read(obj).size == size):
        return slot
    candidates = _by_size(obj, size, exclude)
    return candidates[0] if len(candidates) == 1 else None


def find_gradient(obj: Any, which: str, size: int, exclude: tuple[Any, ...] = (),
                  names: tuple[str, ...] = ()) -> Slot | None:
    """Where ``obj`` left a parameter's gradient after backward: by name, else by size."""
    slot = _named(obj, names + GRADIENT_NAMES[which], _GRAD_CONTAINERS, _KEYS[which] + tuple(
        f"d{k}" for k in _KEYS[which]))
    if slot is not None:
        return slot
    candidates = _by_size(obj, size, exclude)
    return candidates[0] if len(candidates) == 1 else None
