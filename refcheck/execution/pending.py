"""What a sweep has in flight and what it returns: a submitted case (its implementation task and
torch's), torch's failure, and the sweep's result."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..cases import Case
from ..report.stream import RecordStream

__all__ = ["OracleFailure", "Pending", "SweepResult", "compute_references"]

Record = dict[str, Any]


@dataclass
class SweepResult:
    """Records in case order; ``interrupted`` when Ctrl-C stopped the sweep (records hold what finished).

    With a ``stream`` the records went to it as cases finished and ``records`` is empty.
    """

    records: list[Record]
    interrupted: bool = False
    finished: int = 0
    total: int = 0
    stream: RecordStream | None = None


def compute_references(cases: list[Case], cache_dir: str | None) -> list[tuple[str, Any, Any]]:
    """torch's results for cases, in the oracle's process (torch is imported there, never here):
    per case ("ok", reference, at_dtype) or ("error", "TypeName: message", None)."""
    from ..oracle import compute_references as compute

    return compute(cases, cache_dir)


class OracleFailure(RuntimeError):
    """torch failed on a case; the message is the oracle's own "TypeName: message"."""


@dataclass
class Pending:
    """A submitted case: the implementation's future and the oracle's (or its cached results).

    The futures of worker tasks hold a list (one item per case of the chunk) and the indexes say
    which is this case's; an in-process run's implementation future holds the case's own result.
    """

    case: Case
    implementation: Future
    timeout: float | None
    oracle: Future | None = None
    cached: tuple[dict, dict] | None = None
    index: int | None = None
    oracle_index: int | None = None
    run_again: bool = False  # already run again alone after its pool gave up

    def raw(self, answer: Callable[[Future], Any] = Future.result) -> dict[str, Any]:
        result = answer(self.implementation)
        return result if self.index is None else result[self.index]
