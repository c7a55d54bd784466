"""Two runs compared: regressions (passed to failed or errored), fixes, errors grown more than
tenfold, cases added and removed. Works on the records of two results.json files.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .groups import one_line
from .ranking import error_ratio, rank

__all__ = ["GROWTH", "RunDiff", "diff_runs"]

GROWTH = 10.0
_BAD = ("failed", "error")


@dataclass(frozen=True)
class RunDiff:
    """The changes from an old run to a new one; ``table`` has one row per changed case."""

    table: pd.DataFrame

    def count(self, change: str) -> int:
        return int((self.table["change"] == change).sum()) if not self.table.empty else 0

    @property
    def regressed(self) -> bool:
        return self.count("regression") > 0

    def headline(self) -> str:
        return ", ".join(f"{c}: {self.count(c)}" for c in ("regression", "fixed", "error grew", "added", "removed"))


def _cases(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per case: layer, worst status, worst ratio, the worst failing record's reason."""
    cases: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        cases.setdefault(str(record["case"]), []).append(record)
    out = {}
    for case_id, rows in cases.items():
        statuses = {str(r.get("status")) for r in rows}
        status = next((s for s in ("error", "failed", "passed", "skipped") if s in statuses), "skipped")
        ratios = [error_ratio(r) for r in rows]
        ratios = [r for r in ratios if not math.isnan(r)]
        worst = max(rows, key=rank)
        out[case_id] = {"layer": str(rows[0]["layer"]), "status": status,
                        "ratio": max(ratios) if ratios else math.nan,
                        "reason": one_line(worst.get("reason"), 160) if status in _BAD else ""}
    return out


def diff_runs(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], growth: float = GROWTH) -> RunDiff:
    """Compare two runs' records case by case."""
    before, after = _cases(old), _cases(new)
    rows = []
    for case_id, now in after.items():
        was = before.get(case_id)
        if was is None:
            change = "added"
        elif now["status"] in _BAD and was["status"] not in _BAD and was["status"] != "skipped":
            change = "regression"
        elif was["status"] in _BAD and now["status"] == "passed":
            change = "fixed"
        elif (not math.isnan(now["ratio"]) and not math.isnan(was["ratio"]) and now["ratio"] > growth * was["ratio"]
              and now["ratio"] > 0):
            change = "error grew"
        else:
            continue
        rows.append({"change": change, "layer": now["layer"], "case": case_id,
                     "old": "" if was is None else was["status"], "new": now["status"],
                     "old err/tol": math.nan if was is None else was["ratio"], "new err/tol": now["ratio"],
                     "reason": now["reason"]})
    for case_id, was in before.items():
        if case_id not in after:
            rows.append({"change": "removed", "layer": was["layer"], "case": case_id, "old": was["status"],
                         "new": "", "old err/tol": was["ratio"], "new err/tol": math.nan, "reason": ""})
    order = {"regression": 0, "error grew": 1, "fixed": 2, "added": 3, "removed": 4}
    columns = ["change", "layer", "case", "old", "new", "old err/tol", "new err/tol", "reason"]
    table = pd.DataFrame(rows, columns=columns)
    if not table.empty:
        table = table.sort_values(["change", "layer", "case"], key=lambda c: c.map(order) if c.name == "change" else c,
                                  kind="stable").reset_index(drop=True)
    return RunDiff(table)
