"""Expansions kept on disk: a space's cases and coverage depend only on the space, the sweep's
options and the code that expands it, so a sweep run again reads them instead of searching anew.

One JSON file per (space, quick, seed), keyed by a hash that includes the source of this stage
and of the specs; JSON (never pickle) because the folder is the user's own. A file that is
missing, damaged or from other code is ignored and written again.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
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


def _to_json(cases: list[Case], coverage: Coverage) -> str:
    payload = {"cases": [[_encode(getattr(case, name)) for name in _CASE_FIELDS] for case in cases],
               "coverage": [_encode(getattr(coverage, name)) for name in _COVERAGE_FIELDS]}
    return json.dumps(payload, separators=(",", ":"))


def _from_json(text: str) -> tuple[list[Case], Coverage]:
    payload = json.loads(text)
    shared: dict[Any, Any] = {}
    cases = [Case(**dict(zip(_CASE_FIELDS, (_decode(v, shared) for v in row), strict=True)))
             for row in payload["cases"]]
    coverage = Coverage(**dict(zip(_COVERAGE_FIELDS, (_decode(v, shared) for v in payload["coverage"]), strict=True)))
    return cases, coverage


def expand_cached(space: Space, *, quick: bool, base_seed: int,
                  folder: str | Path | None) -> tuple[list[Case], Coverage]:
    """:func:`~refcheck.cases.expand` of the whole space (every configuration supported), read from
    ``folder`` when it was expanded before; without a folder, expanded every time."""
    if folder is None:
        return expand(space, quick=quick, base_seed=base_seed)
    key = hashlib.sha256(repr((space, quick, base_seed, _fingerprint())).encode()).hexdigest()
    path = Path(folder) / f"{key}.json"
    try:
        return _from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):  # absent, damaged or foreign: expand again
        pass
    cases, coverage = expand(space, quick=quick, base_seed=base_seed)
    try:
        text = _to_json(cases, coverage)
        cases = _from_json(text)[0]  # the compact form, as a later run reads it
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except (OSError, TypeError):  # a read-only disk or an odd value only costs speed next time
        pass
    return cases, coverage
