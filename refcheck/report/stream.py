"""Records on disk as cases finish, read back in case order: the report is assembled from the stream.

:class:`RecordStream` appends each finished case's records to one file (length-prefixed pickles,
so every value comes back with its exact type) and keeps only an index in memory (offset, length,
layer and a digest per case). The file is writable by any process running as the user, the code
under test included: a case whose bytes no longer match their digest stops the report
(:class:`StreamChanged`) instead of being unpickled. Readers walk it in case order (:meth:`RecordStream.__iter__`) or one layer at a
time (:meth:`RecordStream.layers`), so the report writers hold at most one layer's records.
:func:`as_source` gives a plain list of records the same interface.
"""
from __future__ import annotations

import hashlib
import pickle
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..specs import RefcheckError

__all__ = ["RecordSource", "RecordStream", "StreamChanged", "as_source"]

Record = Mapping[str, Any]


class StreamChanged(RefcheckError):
    """The record file was changed behind refcheck's back while it ran: no report can be trusted."""


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class RecordSource(Protocol):
    """Records in case order, walked as often as needed, whole, one layer at a time, or one case at
    a time within each layer (:meth:`layer_cases`, which never holds more than one case)."""

    def __iter__(self) -> Iterator[Record]: ...

    def layers(self) -> Iterator[tuple[str, list[Record]]]: ...

    def layer_cases(self) -> Iterator[tuple[str, Iterator[list[Record]]]]: ...


class _ListSource:
    def __init__(self, records: Sequence[Record]) -> None:
        self.records = records

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def layers(self) -> Iterator[tuple[str, list[Record]]]:
        by_layer: dict[str, list[Record]] = {}
        for record in self.records:
            by_layer.setdefault(str(record["layer"]), []).append(record)
        yield from by_layer.items()

    def layer_cases(self) -> Iterator[tuple[str, Iterator[list[Record]]]]:
        for layer, records in self.layers():
            by_case: dict[str, list[Record]] = {}
            for record in records:
                by_case.setdefault(str(record["case"]), []).append(record)
            yield layer, iter(by_case.values())


def as_source(records: Sequence[Record] | RecordSource) -> RecordSource:
    """A RecordStream as it is; a list (or other sequence) of records wrapped to read the same way."""
    if hasattr(records, "layers"):
        return records  # type: ignore[return-value]
    return _ListSource(records)  # type: ignore[arg-type]


class RecordStream:
    """An append-only file of each case's records, in a private temporary folder under ``parent``.

    ``add`` as cases finish (in any order); ``set_order`` with the sweep's case ids fixes the
    order readers see (cases that never finished are left out). ``close`` removes the file.
    """

    def __init__(self, parent: str | Path | None = None) -> None:
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=".refcheck-records-", dir=parent))
        self.path = self.folder / "records.pickles"
        self._file = open(self.path, "w+b")
        self._index: dict[str, tuple[str, int, int, bytes]] = {}  # case id -> (layer, offset, length, digest)
        self._order: list[str] | None = None
        self._end = 0  # the file's length: appends go there (a seek would flush the write buffer)
        self._reading = False  # whether the position was moved by a read

    def add(self, case_id: str, layer: str, records: Sequence[Record]) -> None:
        data = pickle.dumps(list(records), protocol=pickle.HIGHEST_PROTOCOL)
        if self._reading:
            self._file.seek(self._end)
            self._reading = False
        offset = self._end
        try:
            self._file.write(data)
            self._end = offset + len(data)  # before the index: an interruption orphans the data at worst
        except BaseException:  # (a Ctrl-C too) the next append starts again at the end of the last whole case
            self._reading = True
            raise
        self._index[case_id] = (layer, offset, len(data), _digest(data))

    def set_order(self, case_ids: Iterable[str]) -> None:
        self._order = [case_id for case_id in dict.fromkeys(case_ids) if case_id in self._index]

    @property
    def cases(self) -> int:
        return len(self._index)

    def _ids(self) -> list[str]:
        return self._order if self._order is not None else list(self._index)

    def _read(self, case_id: str) -> list[Record]:
        _, offset, length, digest = self._index[case_id]
        if not self._reading:
            self._file.flush()
            self._reading = True
        self._file.seek(offset)
        data = self._file.read(length)
        if _digest(data) != digest:
            raise StreamChanged(f"the records of {case_id} were changed on disk while refcheck ran ({self.path}); "
                                "nothing else writes there but code running as you (the code under test?): "
                                "no report is written")
        return pickle.loads(data)  # noqa: S301 - the bytes written above, as the digest shows

    def __iter__(self) -> Iterator[Record]:
        for case_id in self._ids():
            yield from self._read(case_id)

    def layers(self) -> Iterator[tuple[str, list[Record]]]:
        by_layer: dict[str, list[str]] = {}
        for case_id in self._ids():
            by_layer.setdefault(self._index[case_id][0], []).append(case_id)
        for layer, case_ids in by_layer.items():
            yield layer, [record for case_id in case_ids for record in self._read(case_id)]

    def layer_cases(self) -> Iterator[tuple[str, Iterator[list[Record]]]]:
        by_layer: dict[str, list[str]] = {}
        for case_id in self._ids():
            by_layer.setdefault(self._index[case_id][0], []).append(case_id)
        for layer, case_ids in by_layer.items():
            yield layer, (self._read(case_id) for case_id in case_ids)

    def records(self) -> list[Record]:
        """Every record in a list (for callers that want them all at once)."""
        return list(self)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RecordStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
