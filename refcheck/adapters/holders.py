"""Parameters kept in holder objects, as library-style code keeps them: ``self.weight =
Parameter(array)`` with the array in ``.data`` (or ``.value``) and its gradient left in ``.grad``
(or ``.gradient``). refcheck writes the case's parameter into the holder the object already has,
as if the holder had been made from it (a gradient it keeps starts at zeros of the parameter's
shape and dtype), and reads the gradient back from it; a plain array attribute is set and read as
it is.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GRADIENT_ATTRIBUTES", "VALUE_ATTRIBUTES", "fill_holder", "holder_attribute", "holder_gradient", "set_array",
           "unwrapped"]

VALUE_ATTRIBUTES = ("data", "value")
GRADIENT_ATTRIBUTES = ("grad", "gradient")


def holder_attribute(value: Any, names: tuple[str, ...] = VALUE_ATTRIBUTES) -> str | None:
    """The attribute of ``value`` holding an array (one of ``names``), when ``value`` is a holder
    object rather than an array itself (an ndarray's own ``.data`` is its buffer, not a holder's)."""
    if value is None or isinstance(value, (np.ndarray, np.generic, int, float, complex, str, bytes, dict, list, tuple)):
        return None
    for name in names:
        try:
            inner = getattr(value, name, None)
        except Exception:  # noqa: BLE001 - a property of the user's class may raise
            continue
        if isinstance(inner, np.ndarray):
            return name
    return None


def unwrapped(value: Any) -> Any:
    """The array a holder holds, or ``value`` itself."""
    inner = holder_attribute(value)
    return getattr(value, inner) if inner else value


def holder_gradient(value: Any) -> np.ndarray | None:
    """The gradient a holder carries after backward (None if ``value`` is no holder or has none)."""
    if holder_attribute(value) is None:
        return None
    inner = holder_attribute(value, GRADIENT_ATTRIBUTES)
    return getattr(value, inner) if inner else None


def fill_holder(holder: Any, inner: str, array: Any) -> None:
    """``holder.<inner> = array``, and a gradient array it keeps reset to zeros like ``array``
    (as its constructor would have made it: a float64 one left from construction would make every
    float32 case's gradient float64)."""
    setattr(holder, inner, array)
    for name in GRADIENT_ATTRIBUTES:
        if isinstance(getattr(holder, name, None), np.ndarray):
            setattr(holder, name, np.zeros_like(array))


def set_array(obj: Any, name: str, array: Any) -> None:
    """``obj.<name> = array``, or into the holder's array when ``obj.<name>`` is a holder."""
    current = getattr(obj, name, None)
    inner = holder_attribute(current)
    if inner:
        fill_holder(current, inner, array)
    else:
        setattr(obj, name, array)
