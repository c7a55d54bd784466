"""The oracle's cache: torch's results are deterministic per case, so they are computed once.

Entries are keyed by the case (id, seed, shapes, hyperparameters, input kind), the torch version
and a fingerprint of the code that builds inputs and runs torch, and kept in memory (a small LRU)
and optionally on disk (a row of raw arrays per case in one SQLite database in the folder). Re-checking the same cases
against a changed implementation then skips torch. The cache folder is the user's own: an
implementation running as the same user could write there, so a grader passes --no-oracle-cache.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
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
            count = math.prod(shape)  # Python ints: exact (np.prod of a list costs 2 us, and wraps)
            results[name] = np.frombuffer(data, kind, count, offset).reshape(tuple(shape)).copy()
            offset += count * kind.itemsize
        sections[section] = results
    if offset != len(data):
        raise ValueError("a damaged refcheck oracle cache entry")
    reference, at_dtype = sections["reference"], sections["at_dtype"]
    assert reference is not None
    return reference, reference if at_dtype is None else at_dtype


_DATABASE = "oracle.sqlite3"
_connections: dict[tuple[int, Path], sqlite3.Connection | None] = {}


def _connect(directory: Path, create: bool) -> sqlite3.Connection | None:
    """This process's connection to the cache's database (None when it cannot be opened, or does
    not exist and ``create`` is False). Several processes read and write it at once (WAL journal)."""
    path = directory / _DATABASE
    key = (os.getpid(), path)
    if key in _connections:
        return _connections[key]
    connection = None
    try:
        if not create and not path.is_file():
            return None
        directory.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # a cache: losing the last writes on a crash is fine
        connection.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    except (OSError, sqlite3.Error):  # unreachable, read-only, full, or not a database: run without it
        if connection is not None:
            connection.close()
        _connections[key] = None  # not tried again by this process
        return None
    _connections[key] = connection
    return connection


class OracleCache:
    """Memory (LRU of ``memory_entries``) and optional disk cache of (reference, at_dtype) per case.

    On disk: one SQLite database in the folder, a row per case (its key and :func:`_pack`'s bytes);
    a chunk of cases is read, and written, in one statement.
    """

    def __init__(self, directory: str | Path | None, memory_entries: int = 256) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.memory_entries = memory_entries
        self._memory: OrderedDict[str, tuple[Results, Results]] = OrderedDict()
        self.hits = self.misses = 0

    def _database(self, create: bool) -> sqlite3.Connection | None:
        return None if self.directory is None else _connect(self.directory, create)

    def has_entries(self) -> bool:
        """Whether the disk cache holds any result (of any version): False for a first run."""
        database = self._database(create=False)
        try:
            return database is not None and database.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is not None
        except sqlite3.Error:
            return False

    def any_missing(self, cases: list[Case]) -> bool:
        """Whether some case has no entry (looked up by key alone, without reading the entries)."""
        keys = list(dict.fromkeys(_key(case) for case in cases))
        on_disk = [key for key in keys if key not in self._memory]
        database = self._database(create=False) if on_disk else None
        if on_disk and database is None:
            return True
        try:
            for start in range(0, len(on_disk), 500):
                batch = on_disk[start:start + 500]
                found = database.execute(f"SELECT COUNT(*) FROM entries WHERE key IN ({','.join('?' * len(batch))})",
                                         batch).fetchone()[0]
                if found < len(batch):
                    return True
        except sqlite3.Error:
            return True
        return False

    def load(self, case: Case) -> tuple[Results, Results] | None:
        return self.load_many([case])[0]

    def load_many(self, cases: list[Case]) -> list[tuple[Results, Results] | None]:
        """Each case's entry, or None where it has none (or a damaged one: recomputed)."""
        keys = [_key(case) for case in cases]
        found: dict[str, tuple[Results, Results]] = {}
        for key in keys:  # memory first, before disk entries join the LRU and push any out
            if key in self._memory:
                self._memory.move_to_end(key)
                found[key] = self._memory[key]
        on_disk = [key for key in dict.fromkeys(keys) if key not in found]
        database = self._database(create=False) if on_disk else None
        if database is not None:
            try:
                rows = database.execute(f"SELECT key, value FROM entries WHERE key IN ({','.join('?' * len(on_disk))})",
                                        on_disk).fetchall()
            except sqlite3.Error:
                rows = []
            for key, value in rows:
                try:
                    found[key] = _unpack(value)
                except Exception:  # noqa: BLE001 - a damaged entry, whatever is wrong with it: recomputed (and replaced)
                    continue
                self._remember(key, found[key])
        entries = [found.get(key) for key in keys]
        hits = sum(entry is not None for entry in entries)
        self.hits += hits
        self.misses += len(entries) - hits
        return entries

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
        """Write an entry to disk (and keep it in memory)."""
        self.store_many([(case, reference, at_dtype)])

    def store_many(self, entries: list[tuple[Case, Results, Results]]) -> None:
        """Write entries to disk in one transaction (and keep them in memory)."""
        rows = []
        for case, reference, at_dtype in entries:
            key = _key(case)
            self._remember(key, (reference, at_dtype))
            try:
                rows.append((key, _pack(reference, at_dtype)))
            except (ValueError, TypeError, OverflowError, MemoryError):  # object arrays, odd results: not cached
                continue
        database = self._database(create=True) if rows else None
        if database is None:
            return
        try:
            with database:  # one transaction
                database.execute("BEGIN")
                database.executemany("INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)", rows)
        except (sqlite3.Error, OverflowError, MemoryError):  # a read-only, full or locked disk, a huge entry: speed only
            pass
