"""What one forward call recorded on a layer object for its backward, taken back.

Some layer objects (numpy-ml's, for one) append each forward's input and intermediate results to
lists, ``self.X.append(X)`` or ``self.derived_variables["Z"].append(Z)``, and their backward walks
those lists, one entry per call (returning a list of input gradients when there were several).
When such a layer builds its parameters lazily on its first forward, refcheck writes the case's
parameters over the ones it built and runs forward again; the first call's entries are taken back
first, so that backward sees the checked call alone.
"""
from __future__ import annotations

from typing import Any

from .params import _attributes

# (attribute,) or (attribute, key of a dict attribute): a list's place on the object.
ListPlace = tuple[Any, ...]


def _lists(obj: Any) -> dict[ListPlace, list]:
    """The lists held by ``obj``'s attributes directly or as values of its dict attributes."""
    found: dict[ListPlace, list] = {}
    for name, value in _attributes(obj).items():
        if isinstance(value, list):
            found[(name,)] = value
        elif isinstance(value, dict):
            for key, inner in list(value.items()):
                if isinstance(inner, list):
                    found[(name, key)] = inner
    return found


def list_lengths(obj: Any) -> dict[ListPlace, int]:
    """The length of every list :func:`_lists` finds, to compare after a call."""
    return {place: len(values) for place, values in _lists(obj).items()}


def take_back_one_call(obj: Any, before: dict[ListPlace, int]) -> None:
    """Remove the one entry a call appended to each list of ``obj`` (lists it created are emptied).

    ``before`` is :func:`list_lengths` taken before the call. A list that grew by more than one
    entry (or shrank) was not a per-call record and is left as it is.
    """
    for place, values in _lists(obj).items():
        if len(values) == before.get(place, 0) + 1:
            del values[-1]
