"""Where a layer object keeps its parameters and leaves their gradients.

Parameters are found by name first (``W``, ``weights``, ``kernels``, ``params["W"]``...), then by
shape (the one array attribute shaped like the weight); a name may hold a holder object (``self.weight =
Parameter(array)``, see :mod:`refcheck.adapters.holders`), whose ``.grad`` is then the gradient. Gradients likewise (``dW``,
``gradient_weights``, ``grads["W"]``, ``_gradient_bias``...), then by shape among the arrays that
are not the parameter itself. When backward applies an update itself and keeps no gradient, the
gradient is recovered from the parameter's change and the learning rate refcheck passed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .construct import plain_name
from .holders import GRADIENT_ATTRIBUTES, fill_holder, holder_attribute

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
    """Where one array lives on an object: ``obj.<attribute>``, ``obj.<attribute>[<key>]``, or the
    ``inner`` attribute of the holder found there (``obj.weight.data``)."""

    attribute: str
    key: str | None = None
    inner: str | None = None

    @classmethod
    def parse(cls, path: str) -> Slot:
        """A mapping's name: ``"weights"`` or a holder's ``"weight.data"``."""
        attribute, _, inner = path.partition(".")
        return cls(attribute, inner=inner or None)

    def read(self, obj: Any) -> Any:
        value = getattr(obj, self.attribute, None)
        if self.key is not None:
            value = value.get(self.key) if isinstance(value, dict) else None
        if self.inner is not None:
            return getattr(value, self.inner, None)
        return value

    def write(self, obj: Any, value: Any) -> None:
        if self.inner is not None:
            holder = Slot(self.attribute, self.key).read(obj)
            if holder is not None:  # None: the object has no such parameter in this case (bias=False)
                fill_holder(holder, self.inner, value)
        elif self.key is not None:
            getattr(obj, self.attribute)[self.key] = value
        else:
            setattr(obj, self.attribute, value)

    def __str__(self) -> str:
        text = f"{self.attribute}[{self.key!r}]" if self.key is not None else self.attribute
        return f"{text}.{self.inner}" if self.inner is not None else text


def _attributes(obj: Any) -> dict[str, Any]:
    try:
        return dict(vars(obj))
    except TypeError:
        return {}


def _array_slot(value: Any, attribute: str, key: str | None = None, unset: bool = False) -> Slot | None:
    """The slot of an array (or of a holder's array, or of None when ``unset``) found at attribute/key."""
    if isinstance(value, np.ndarray) or (unset and value is None):
        return Slot(attribute, key)
    inner = holder_attribute(value)
    return Slot(attribute, key, inner) if inner else None


def _named(obj: Any, names: tuple[str, ...], containers: tuple[str, ...], keys: tuple[str, ...],
           unset: bool = False) -> Slot | None:
    """A slot holding an array under one of the names (``unset``: or holding None, not yet initialised)."""
    attributes = _attributes(obj)
    plain = {plain_name(k): k for k in attributes}
    for name in names:
        actual = name if name in attributes else plain.get(plain_name(name))
        if actual is not None and (slot := _array_slot(attributes[actual], actual, unset=unset)) is not None:
            return slot
    for container in containers:
        mapping = attributes.get(container)
        if isinstance(mapping, dict):
            for key in keys:
                for candidate in (key, *[k for k in mapping if plain_name(str(k)) == plain_name(key)]):
                    if candidate in mapping and (slot := _array_slot(mapping[candidate], container, candidate,
                                                                     unset)) is not None:
                        return slot
    return None


def _by_size(obj: Any, size: int, exclude: tuple[Any, ...]) -> list[Slot]:
    found = []
    for name, value in _attributes(obj).items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for key, item in items:
            slot = _array_slot(item, name, key)
            array = slot.read(obj) if slot is not None else None
            if isinstance(array, np.ndarray) and array.size == size and not any(array is e for e in exclude):
                found.append(slot)
    return found


def find_parameter(obj: Any, which: str, size: int, exclude: tuple[Any, ...] = ()) -> Slot | None:
    """Where ``obj`` keeps its weight or bias: by name, else the one array of that size."""
    slot = _named(obj, PARAMETER_NAMES[which], _CONTAINERS, _KEYS[which], unset=True)
    if slot is not None and (slot.read(obj) is None or slot.read(obj).size == size):
        return slot
    candidates = _by_size(obj, size, exclude)
    return candidates[0] if len(candidates) == 1 else None


def find_gradient(obj: Any, which: str, size: int, exclude: tuple[Any, ...] = (),
                  names: tuple[str, ...] = (), parameter: Slot | None = None) -> Slot | None:
    """Where ``obj`` left a parameter's gradient after backward: a mapping's holder path
    (``weight.grad``), the ``.grad`` of the holder the parameter is in, by name, else by size."""
    for name in names:
        if "." in name:
            return Slot.parse(name)
    if parameter is not None and parameter.inner is not None:
        holder = Slot(parameter.attribute, parameter.key).read(obj)
        inner = holder_attribute(holder, GRADIENT_ATTRIBUTES)
        if inner is not None:
            return Slot(parameter.attribute, parameter.key, inner)
    slot = _named(obj, names + GRADIENT_NAMES[which], _GRAD_CONTAINERS, _KEYS[which] + tuple(
        f"d{k}" for k in _KEYS[which]))
    if slot is not None:
        return slot
    candidates = _by_size(obj, size, exclude)
    return candidates[0] if len(candidates) == 1 else None
