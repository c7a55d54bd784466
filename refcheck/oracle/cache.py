"""The oracle's cache: torch's results are deterministic per case, so they are computed once.

Entries are keyed by the case (id, seed, shapes, hyperparameters, input kind), the torch version
and a fingerprint of the code that builds inputs and runs torch, and kept in memory (a small LRU)
and optionally on disk (one file of raw arrays per case, written atomically). Re-checking the same cases
against a changed implementation then skips torch. The cache folder is the user's own: an
implementation running as the same user could write there, so a grader passes --no-oracle-cache.
"""
from __future__ import annotations

import hashlib
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


_MAGIC = b"RCO1"


def _pack(reference: Results, at_dtype: Results) -> bytes:
    """One file: magic, header length, a JSON header (name, dtype, shape per array), the raw bytes."""
    sections = {"reference": reference, "at_dtype": None if at_dtype is reference else at_dtype}
    header: dict[str, Any] = {}
    blobs: list[bytes] = []
    for section, results in sections.items():
        if results is None:
            header[section] = None
            continue
        header[section] = []
        for name, value in results.items():
            if value is None:
                header[section].append([name, None, None])
                continue
            array = np.asarray(value)
            if array.dtype.hasobject:
                raise ValueError(f"{name}: object arrays are not cached")
            header[section].append([name, array.dtype.str, list(array.shape)])
            blobs.append(array.tobytes())
    text = json.dumps(header).encode()
    return b"".join([_MAGIC, len(text).to_bytes(8, "little"), text, *blobs])


def _unpack(data: bytes) -> tuple[Results, Results]:
    if data[:4] != _MAGIC:
        raise ValueError("not a refcheck oracle cache entry")
    length = int.from_bytes(data[4:12], "little")
    header = json.loads(data[12:12 + length])
    offset = 12 + length
    sections: dict[str, Results | None] = {}
    for section in ("reference", "at_dtype"):
        if header[section] is None:
            sections[section] = None
            continue
        results: Results = {}
        for name, dtype, shape in header[section]:
            if dtype is None:
                results[name] = None
                continue
            kind = np.dtype(dtype)
            count = int(np.prod(shape, dtype=np.int64))
            results[name] = np.frombuffer(data, kind, count, offset).reshape(tuple(shape)).copy()
            offset += count * kind.itemsize
        sections[section] = results
    if offset != len(data):
        raise ValueError("a damaged refcheck oracle cache entry")
    reference, at_dtype = sections["reference"], sections["at_dtype"]
    assert reference is not None
    return reference, reference if at_dtype is None else at_dtype


class OracleCache:
    """Memory (LRU of ``memory_entries``) and optional disk cache of (reference, at_dtype) per case."""

    def __init__(self, directory: str | Path | None, memory_entries: int = 256) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.memory_entries = memory_entries
        self._memory: OrderedDict[str, tuple[Results, Results]] = OrderedDict()
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.arrays"

    def has_entries(self) -> bool:
        """Whether the disk cache holds any result (of any version): False for a first run."""
        return self.directory is not None and any(self.directory.glob("*/*.arrays"))

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
