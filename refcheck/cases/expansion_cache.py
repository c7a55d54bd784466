"""Expansions kept on disk: a space's cases and coverage depend only on the space, the sweep's
options and the code that expands it, so a sweep run again reads them instead of searching anew.

One file per (space, quick, seed), keyed by a hash that includes the source of this stage and of
the specs: JSON lines (the coverage, then a case per line, read a line at a time), never pickle,
because the folder is the user's own. A file that is
missing, damaged or from other code is ignored and written again.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .case import Case
from .expand import Coverage, expand
from .spaces import Space

__all__ = ["expand_cached"]

_TUPLE = "__tuple__"


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    """A hash of the sources that decide an expansion (this stage and the layer specs)."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for folder in ("cases", "specs"):
        for path in sorted((package / folder).glob("*.py")) + sorted((package / folder).glob("*.toml")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _encode(value: Any) -> Any:
    """Plain JSON with tuples tagged (case fields hold tuples that must come back as tuples)."""
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot keep {type(value).__name__} in an expansion file")


def _decode(value: Any, shared: dict[Any, Any]) -> Any:
    """A JSON value back, tuples restored; equal values become one object (``shared``): the cases of
    a layer repeat the same shapes and hyperparameters, and a big sweep holds many. The keys tell
    1, 1.0, True and -0.0 apart (a tuple is keyed by its already shared items)."""
    if isinstance(value, dict):
        items = tuple(_decode(v, shared) for v in value[_TUPLE])
        return shared.setdefault((tuple, tuple(map(id, items))), items)
    if isinstance(value, list):
        return [_decode(v, shared) for v in value]
    key = (float, repr(value)) if isinstance(value, float) else (type(value), value)
    return shared.setdefault(key, value)


_CASE_FIELDS = ("layer", "id", "dtype", "seed", "shapes", "hparams", "values", "source", "tolerance")
_COVERAGE_FIELDS = ("layer", "required", "covered", "infeasible", "missing", "unsupported")


def _to_lines(cases: list[Case], coverage: Coverage) -> str:
    """The coverage on the first line, then one case per line (read back a line at a time)."""
    lines = [json.dumps([_encode(getattr(coverage, name)) for name in _COVERAGE_FIELDS], separators=(",", ":"))]
    lines += [json.dumps([_encode(getattr(case, name)) for name in _CASE_FIELDS], separators=(",", ":"))
              for case in cases]
    return "\n".join(lines) + "\n"


def _from_lines(lines: Iterable[str]) -> tuple[list[Case], Coverage]:
    shared: dict[Any, Any] = {}
    rows = iter(lines)
    coverage = Coverage(**dict(zip(_COVERAGE_FIELDS, (_decode(v, shared) for v in json.loads(next(rows))),
                                   strict=True)))
    cases = [Case(**dict(zip(_CASE_FIELDS, (_decode(v, shared) for v in json.loads(row)), strict=True)))
             for row in rows]
    return cases, coverage


def expand_cached(space: Space, *, quick: bool, base_seed: int,
                  folder: str | Path | None) -> tuple[list[Case], Coverage]:
    """:func:`~refcheck.cases.expand` of the whole space (every configuration supported), read from
    ``folder`` when it was expanded before; without a folder, expanded every time."""
    if folder is None:
        return expand(space, quick=quick, base_seed=base_seed)
    key = hashlib.sha256(repr((space, quick, base_seed, _fingerprint())).encode()).hexdigest()
    path = Path(folder) / f"{key}.jsonl"
    try:
        with open(path, encoding="utf-8") as lines:
            return _from_lines(lines)
    except (OSError, ValueError, KeyError, TypeError, StopIteration):  # absent, damaged or foreign: expand again
        pass
    cases, coverage = expand(space, quick=quick, base_seed=base_seed)
    try:
        text = _to_lines(cases, coverage)
        cases = _from_lines(text.splitlines())[0]  # the compact form, as a later run reads it
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except (OSError, TypeError):  # a read-only disk or an odd value only costs speed next time
        pass
    return cases, coverage
