"""The oracle's cache: torch's results are deterministic per case, so they are computed once.

Entries are keyed by the case (id, seed, shapes, hyperparameters, input kind), the torch version
and a fingerprint of the code that builds inputs and runs torch, and kept in memory (a small LRU)
and optionally on disk (one ``.npz`` per case, written atomically). Re-checking the same cases
against a changed implementation then skips torch. The cache folder is the user's own: an
implementation running as the same user could write there, so a grader passes --no-oracle-cache.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections import OrderedDict
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..cases import Case

__all__ = ["OracleCache", "default_cache_dir"]

Results = dict[str, Any]


def default_cache_dir() -> Path:
    """``$REFCHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/refcheck/oracle`` (``~/.cache/refcheck/oracle``)."""
    if os.environ.get("REFCHECK_CACHE_DIR"):
        return Path(os.environ["REFCHECK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "refcheck" / "oracle"


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    """torch's version and a hash of the sources that decide a reference (inputs, specs, oracle)."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    try:
        digest.update(metadata.version("torch").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"torch-unknown")
    for folder in ("cases", "specs", "oracle"):
        for path in sorted((package / folder).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _key(case: Case) -> str:
    text = repr((case.id, case.seed, case.shapes, case.hparams, case.values, case.dtype, _fingerprint()))
    return hashlib.sha256(text.encode()).hexdigest()


def _pack(reference: Results, at_dtype: Results) -> bytes:
    arrays = {f"r.{k}": v for k, v in reference.items() if v is not None}
    if at_dtype is not reference:
        arrays.update({f"d.{k}": v for k, v in at_dtype.items() if v is not None})
    names = {"reference": list(reference), "at_dtype": None if at_dtype is reference else list(at_dtype)}
    buffer = io.BytesIO()
    np.savez(buffer, __names__=np.array(json.dumps(names)), **arrays)
    return buffer.getvalue()


def _unpack(data: bytes) -> tuple[Results, Results]:
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        names = json.loads(str(stored["__names__"]))
        reference = {k: stored[f"r.{k}"] if f"r.{k}" in stored.files else None for k in names["reference"]}
        if names["at_dtype"] is None:
            return reference, reference
        at_dtype = {k: stored[f"d.{k}"] if f"d.{k}" in stored.files else None for k in names["at_dtype"]}
    return reference, at_dtype


class OracleCache:
    """Memory (LRU of ``memory_entries``) and optional disk cache of (reference, at_dtype) per case."""

    def __init__(self, directory: str | Path | None, memory_entries: int = 256) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.memory_entries = memory_entries
        self._memory: OrderedDict[str, tuple[Results, Results]] = OrderedDict()
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.npz"

    def load(self, case: Case) -> tuple[Results, Results] | None:
        key = _key(case)
        if key in self._memory:
            self._memory.move_to_end(key)
            self.hits += 1
            return self._memory[key]
        if self.directory is not None:
            try:
                entry = _unpack(self._path(key).read_bytes())
            except (OSError, ValueError, KeyError):  # absent, or a damaged file: recompute
                entry = None
            if entry is not None:
                self.hits += 1
                self._remember(key, entry)
                return entry
        self.misses += 1
        return None

    def remember(self, case: Case, reference: Results, at_dtype: Results) -> None:
        """Keep an entry in memory (the disk copy is written where it was computed)."""
        self._remember(_key(case), (reference, at_dtype))

    def _remember(self, key: str, entry: tuple[Results, Results]) -> None:
        if self.memory_entries <= 0:
            return
        self._memory[key] = entry
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_entries:
            self._memory.popitem(last=False)

    def store(self, case: Case, reference: Results, at_dtype: Results) -> None:
        """Write an entry to disk atomically (and keep it in memory)."""
        key = _key(case)
        self._remember(key, (reference, at_dtype))
        if self.directory is None:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                out.write(_pack(reference, at_dtype))
            os.replace(temporary, path)
        except OSError:  # a read-only or full disk only costs speed
            pass
