"""summary.md: the per-layer table, the failing cases by layer and cause with their rerun commands,
skip reasons and coverage. No times or paths: the file is tracked and byte-identical run to run.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .groups import FailureGroup
from .tables import display_summary

__all__ = ["failures_markdown", "summary_markdown"]

EXPLANATION = ("Per tensor, the worst error relative to its tolerance (above 1 fails; errors rank first, then "
               "shape, dtype and non-finite failures, then the largest ratio), torch's own error at the same "
               "case and dtype in brackets. The ratio is dtype-free: float32 and float64 cases compare on one scale.")


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def failures_markdown(groups: Sequence[FailureGroup]) -> list[str]:
    """The failing-cases section: one block per (layer, cause) group."""
    lines = ["## Failing cases", ""]
    if not groups:
        return lines + ["None.", ""]
    lines += [f"{sum(g.count for g in groups)} failing case(s) in {len(groups)} group(s), by layer and cause; "
              "each group shows its worst case and the command that reruns it.", ""]
    for group in groups:
        lines += [f"### {group.layer}: {group.cause} ({group.count} case{'s' if group.count != 1 else ''}, "
                  f"{group.status})", "",
                  f"- worst case: `{group.case}` ({group.tensor})",
                  f"- reason: {_cell(group.reason)}"]
        if group.diagnosis:
            lines.append(f"- diagnosis: {_cell(group.diagnosis)}")
        lines += ["", "```bash", group.command, "```", ""]
    return lines


def summary_markdown(summary: pd.DataFrame, groups: Sequence[FailureGroup], skips: Sequence[Mapping[str, Any]],
                     meta: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    """The whole of summary.md; ``plots`` are file names relative to it (the overview first)."""
    lines = [f"# refcheck summary: {meta.get('implementation', '')}", "", f"{meta.get('totals', '')}", ""]
    if plots:
        lines += [f"![worst error / tolerance of every layer and tensor]({plots[0]})", ""]
    implemented = summary[summary["note"].fillna("") != "not implemented"]
    missing = [layer for layer in summary["layer"] if layer not in set(implemented["layer"])]
    lines += [EXPLANATION, "", display_summary(implemented).drop(columns=["note"]).to_markdown(index=False), ""]
    if missing:
        lines += [f"Layers not implemented: {', '.join(missing)}.", ""]
    lines += failures_markdown(groups)
    if skips:
        lines += ["## Skipped cases", "", pd.DataFrame(list(skips)).to_markdown(index=False), ""]
    if len(plots) > 1:
        lines += ["## Where the errors are", "",
                  "Worst error / tolerance over each layer's two most telling parameters (× fails, ■ raised).", ""]
        lines += [f"![{name}]({name})" for name in plots[1:]] + [""]
    coverage = meta.get("coverage") or []
    if coverage:
        lines += ["## Coverage", "", pd.DataFrame(coverage).to_markdown(index=False), ""]
    implementations = meta.get("implementations") or []
    if implementations:
        lines += ["## What was checked as each layer", "", pd.DataFrame(implementations).to_markdown(index=False), ""]
    not_supported = meta.get("not_supported") or {}
    if not_supported:
        lines += ["## Not supported by the implementation", ""]
        lines += [f"- {layer}: {line}" for layer, line in not_supported.items()] + [""]
    return "\n".join(lines)
