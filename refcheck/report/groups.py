"""Failing cases grouped by layer and cause, with the command that reruns one; skip reasons per layer.

Everything here works on plain records in one pass, so the console, summary.md and summary.html
show the same groups.
"""
from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .ranking import cause, error_ratio, rank, reason_kind
from .stream import RecordSource, as_source

__all__ = ["FailureGroup", "FailureGrouping", "SkipCounting", "failure_groups", "one_line", "repro_command",
           "skip_reasons"]

Record = Mapping[str, Any]
_DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class FailureGroup:
    """Cases of one layer failing for one cause; ``case`` is the worst of them."""

    layer: str
    cause: str
    status: str          # "error" when any case of the group errored, else "failed"
    count: int
    case: str
    tensor: str
    reason: str
    diagnosis: str
    ratio: float         # the representative's error / tolerance (nan when not numeric)
    command: str


def repro_command(options: Mapping[str, Any], layer: str, case_id: str) -> str:
    """The ``refcheck run`` command that checks this one case as the sweep did.

    ``options`` are the run's: impl, cases, dtype, seed, quick, map, forward_only, allow_frameworks, timeout,
    where (``{case id: --where text}`` for cases named by their parameters; missing ones take the defaults);
    the dtype selection shapes the sweep, so it is repeated.
    """
    words = ["refcheck", "run"]
    if options.get("impl"):
        words += ["--impl", str(options["impl"])]
    where = (options.get("where") or {}).get(case_id)  # a case named by its parameters, in no sweep
    words += ["--layers", layer, *(["--where", where] if where else ["--case", case_id])]
    if options.get("cases"):
        words += ["--cases", str(options["cases"])]
    if options.get("dtype"):
        words += ["--dtype", str(options["dtype"])]
    if options.get("seed"):
        words += ["--seed", str(options["seed"])]
    if options.get("quick"):
        words.append("--quick")
    if options.get("map"):
        words += ["--map", str(options["map"])]
    for flag in ("forward_only", "allow_frameworks"):
        if options.get(flag):
            words.append("--" + flag.replace("_", "-"))
    timeout = options.get("timeout")
    if timeout is not None and float(timeout) != _DEFAULT_TIMEOUT:
        words += ["--timeout", f"{float(timeout):g}"]
    return " ".join(shlex.quote(word) for word in words)


def one_line(text: Any, limit: int = 240) -> str:
    """The first line of a reason, shortened to ``limit`` characters."""
    line = str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _first_cause(bad: Sequence[Record], worst: Record) -> Record:
    """The record that names what went wrong first: the case's worst, unless that is a gradient
    while its forward output failed with a diagnosis, or a backward that raised on a case whose
    forward output had the wrong shape. The backward was then handed
    an upstream gradient of torch's output shape, not of its own, and its error (often deep in the
    user's code: "operands could not be broadcast") only follows from the forward's."""
    if str(worst.get("tensor", "")).startswith("grad_") and worst.get("status") == "failed":
        # A forward diagnosed wrong is the case's first cause: its backward works on what it left
        # (a dropout that never scales fails both, and its backward's diagnosis read as if the
        # forward were right).
        diagnosed = [r for r in bad if r.get("status") == "failed" and not str(r.get("tensor", "")).startswith("grad_")
                     and isinstance(r.get("diagnosis"), str) and r.get("diagnosis")]
        return diagnosed[0] if diagnosed else worst
    if worst.get("status") != "error" or not str(worst.get("reason", "")).startswith("backward raised"):
        return worst
    shaped = [r for r in bad if r.get("status") == "failed" and not str(r.get("tensor", "")).startswith("grad_")
              and reason_kind("failed", str(r.get("reason", ""))) == "wrong shape"]
    return shaped[0] if shaped else worst


class FailureGrouping:
    """:func:`failure_groups` fed one case at a time (``add``), for a reader that walks the records
    for other reasons too; ``groups`` gives the result."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = options or {}
        self.members: dict[tuple[str, str], list[Record]] = {}
        self.errored: dict[tuple[str, str], bool] = {}
        self.layer_order: dict[str, int] = {}

    def add(self, layer: str, rows: Sequence[Record]) -> None:
        """One case's records (``layer``: the layer it ran in, in run order)."""
        self.layer_order.setdefault(layer, len(self.layer_order))
        bad = [r for r in rows if r.get("status") in ("failed", "error")]
        if not bad:
            return
        worst = _first_cause(bad, max(bad, key=rank))
        key = (str(worst["layer"]), cause(worst))
        self.members.setdefault(key, []).append(worst)
        self.errored[key] = self.errored.get(key, False) or any(r.get("status") == "error" for r in bad)

    def groups(self) -> list[FailureGroup]:
        groups = []
        for (layer, why), worsts in self.members.items():
            top = max(worsts, key=rank)
            diagnosis = top.get("diagnosis")
            groups.append(FailureGroup(
                layer=layer, cause=why, status="error" if self.errored[(layer, why)] else "failed", count=len(worsts),
                case=str(top["case"]), tensor=str(top.get("tensor", "")), reason=one_line(top.get("reason")),
                diagnosis=diagnosis if isinstance(diagnosis, str) else "", ratio=error_ratio(top),
                command=repro_command(self.options, layer, str(top["case"]))))
        groups.sort(key=lambda g: (self.layer_order.get(g.layer, 0), -g.count, g.cause))
        return groups


def failure_groups(records: Sequence[Record] | RecordSource, options: Mapping[str, Any] | None = None
                   ) -> list[FailureGroup]:
    """Failing and erroring cases grouped by (layer, cause of the case's worst record).

    Groups come layer by layer (in the order the layers ran), the largest group first. ``records``
    is read one layer at a time.
    """
    grouping = FailureGrouping(options)
    for layer, cases in as_source(records).layer_cases():
        for rows in cases:
            grouping.add(layer, rows)
    return grouping.groups()


def _skip_reason(reason: Any) -> str:
    text = one_line(reason, limit=400)
    return text.split("; case needs", 1)[0]


class SkipCounting:
    """:func:`skip_reasons` fed one case at a time (``add``); ``reasons`` gives the result."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, rows: Sequence[Record]) -> None:
        if all(r.get("status") == "skipped" for r in rows):
            key = (str(rows[0]["layer"]), _skip_reason(rows[0].get("reason")))
            self.counts[key] = self.counts.get(key, 0) + 1

    def reasons(self) -> list[dict[str, Any]]:
        layer_order = {layer: i for i, layer in enumerate(dict.fromkeys(layer for layer, _ in self.counts))}
        rows = [{"layer": layer, "cases": n, "reason": reason} for (layer, reason), n in self.counts.items()]
        return sorted(rows, key=lambda r: (layer_order[r["layer"]], -r["cases"], r["reason"]))


def skip_reasons(records: Sequence[Record] | RecordSource) -> list[dict[str, Any]]:
    """Per layer, each distinct skip reason once, with how many cases it skipped (most first)."""
    counting = SkipCounting()
    for _, cases in as_source(records).layer_cases():
        for rows in cases:
            counting.add(rows)
    return counting.reasons()
