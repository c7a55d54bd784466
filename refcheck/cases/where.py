"""Cases by specification: ``"stride=(2, 1), padding=1, values='ties'"`` -> the one case it names.

A case need not be in any sweep: the parameters of the layer's space (hyperparameters, shape
parameters, ``dtype`` and ``values``) are enough to rebuild it. Each value is validated as a case
file's would be (type, range, value kind), parameters not named take their defaults (batch 2,
channels 3, input 6x6, float64, normal values; hyperparameters torch's defaults), and the case is
built by :func:`refcheck.cases.expand.build_case`, so torch's validity rules are the sweep's.
:func:`format_where` writes the text that :func:`parse_where` reads back.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from ..specs import LAYERS, CaseFileError, InvalidConfig, UsageError
from .case import Case
from .expand import build_case
from .spaces import Space, allowed_params, space_from_table

__all__ = ["case_from_where", "format_where", "parse_where"]

_WORDS = {"true": True, "false": False, "none": "none", "None": "none"}


def _split(text: str) -> list[str]:
    """Split at commas outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _value(text: str) -> Any:
    """A Python literal (tuples as lists come back as tuples); a bare word is a string."""
    text = text.strip()
    if text in _WORDS:
        return _WORDS[text]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if value is None:
        return "none"
    return tuple(value) if isinstance(value, list) else value


def parse_where(text: str) -> dict[str, Any]:
    """``"name=value, name=value"`` -> {name: value}; UsageError on a malformed item."""
    params: dict[str, Any] = {}
    for item in _split(text):
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--where: {item!r} is not name=value (for example \"stride=(2, 1), padding=1\")")
        params[name.strip()] = _value(value)
    if not params:
        raise UsageError("--where: give at least one name=value")
    return params


def _literal(value: Any) -> str:
    if isinstance(value, str) and value.isidentifier() and value not in _WORDS:
        return value  # a bare word reads back as the same string
    return repr(value)


def format_where(params: Mapping[str, Any]) -> str:
    """The text :func:`parse_where` reads back into the same parameters (words unquoted)."""
    return ", ".join(f"{name}={_literal(value)}" for name, value in params.items())


def _as_table_value(value: Any) -> Any:
    return [_as_table_value(v) for v in value] if isinstance(value, tuple) else value


def case_from_where(space: Space, where: str | Mapping[str, Any], base_seed: int = 0) -> Case:
    """The case of ``space``'s layer that ``where`` names (its tolerance rule from ``space``).

    Raises UsageError naming the parameter for unknown names, values of the wrong kind or out of
    range, and configurations torch rejects.
    """
    params = parse_where(where) if isinstance(where, str) else dict(where)
    spec = LAYERS[space.layer]
    allowed = allowed_params(spec)
    for name in params:
        if name not in allowed:
            raise UsageError(f"--where: {space.layer} has no parameter {name!r}; allowed: {', '.join(allowed)}")
    try:
        checked = space_from_table(space.layer, {"grid": {n: [_as_table_value(v)] for n, v in params.items()}},
                                   space.source)
    except CaseFileError as error:
        raise UsageError(f"--where: {str(error).removeprefix(error.path + ': ')}") from None
    single = Space(space.layer, space.source, checked.grid, {}, (), space.tolerance)
    try:
        return build_case(single, {name: values[0] for name, values in checked.grid.items()}, base_seed)
    except InvalidConfig as error:
        message = str(error).replace("give it in the case file", "give it in --where")
        raise UsageError(f"--where: torch rejects this {space.layer} configuration: {message}") from None
