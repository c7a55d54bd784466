"""Search, not only sweep: hypothesis draws cases of a layer, shrinks a failure to the smallest one.

Every drawn case goes through the same :class:`~refcheck.execution.runner.CaseChecker` as
``refcheck run`` (the implementation in its worker, torch's reference from the oracle, the same
comparison and tolerances), one checker for the whole search. A case fails when any of its rows
failed or errored. hypothesis's ``find`` looks for a failing configuration among
:func:`refcheck.cases.strategies.configurations` (the sweep's validity rules) and shrinks the first
one it finds; the minimal case is then checked once more with the diagnosis on. The examples
database (failures found before are tried first) is keyed by implementation and layer.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..cases import ALL_SUPPORTED, Capabilities, Space
from ..cases.strategies import Drawn, configurations
from ..cases.where import format_where
from .runner import CaseChecker

__all__ = ["FuzzFailure", "FuzzProgress", "LayerFuzz", "fuzz_layer"]

Record = dict[str, Any]


@dataclass
class FuzzProgress:
    """Where a layer's search stands: examples tried, failing ones seen (each after the first is a shrink)."""

    layer: str
    examples: int = 0
    failing: int = 0
    skipped: int = 0
    smallest: str = ""

    @property
    def shrinks(self) -> int:
        return max(0, self.failing - 1)

    def line(self) -> str:
        text = f"{self.layer}: {self.examples} examples"
        if self.failing:
            text += f", failing case found, shrink {self.shrinks}: {self.smallest}"
        return text


@dataclass
class FuzzFailure:
    """The minimal failing case of a layer and its records (with the diagnosis)."""

    drawn: Drawn
    records: list[Record]

    @property
    def where(self) -> str:
        """The ``--where`` text that rebuilds the case."""
        return format_where(self.drawn.params)


@dataclass
class LayerFuzz:
    """The outcome of one layer's search."""

    layer: str
    progress: FuzzProgress
    failure: FuzzFailure | None = None
    records: list[Record] = field(default_factory=list)  # the rows of every distinct case checked


def _bad(records: list[Record]) -> bool:
    return any(record["status"] in ("failed", "error") for record in records)


def fuzz_layer(checker: CaseChecker, space: Space, *, capabilities: Capabilities = ALL_SUPPORTED,
               max_examples: int = 100, seed: int | None = None, database: Any = None, database_key: str = "",
               dtypes: list[str] | None = None,
               on_progress: Callable[[FuzzProgress], None] | None = None) -> LayerFuzz:
    """Search ``space``'s layer for a failing case; the smallest one found, or None.

    seed: derandomises the search (the same cases in the same order every time); database: a
        hypothesis example database (None: none); on_progress: called after every example.
    """
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    progress = FuzzProgress(space.layer)
    seen: dict[tuple[str, int], list[Record]] = {}
    diagnose = checker.options.diagnose
    checker.options.diagnose = False  # the search needs the verdict only; the minimal case gets the diagnosis

    def fails(drawn: Drawn) -> bool:
        key = (drawn.case.id, drawn.case.seed)
        if key not in seen:
            seen[key] = checker.records(checker.submit(drawn.case))
        records = seen[key]
        progress.examples += 1
        if all(record["status"] == "skipped" for record in records):
            progress.skipped += 1
        bad = _bad(records)
        if bad:
            progress.failing += 1
            progress.smallest = drawn.case.id
        if on_progress is not None:
            on_progress(progress)
        return bad

    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink] if database is not None else \
        [Phase.explicit, Phase.generate, Phase.shrink]
    options = settings(max_examples=max_examples, database=database, deadline=None, phases=phases,
                       suppress_health_check=list(HealthCheck), derandomize=False)
    strategy = configurations(space.layer, space=space, capabilities=capabilities, dtypes=dtypes)
    try:
        drawn = find(strategy, fails, settings=options, random=random.Random(seed) if seed is not None else None,
                     database_key=f"refcheck fuzz {database_key} {space.layer}".encode())
    except NoSuchExample:
        drawn = None
    finally:
        checker.options.diagnose = diagnose
    records = [record for rows in seen.values() for record in rows]
    if drawn is None:
        return LayerFuzz(space.layer, progress, None, records)
    final = checker.records(checker.submit(drawn.case)) if diagnose else seen[(drawn.case.id, drawn.case.seed)]
    return LayerFuzz(space.layer, progress, FuzzFailure(drawn, final), records)
