"""Terminal output: a progress bar over the sweep and the per-layer summary table (rich)."""
from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .groups import FailureGroup
from .ranking import record_number
from .tables import DISPLAY_TENSORS, OTHER
from .tables import tensor_cell

__all__ = ["make_console", "print_coverage", "print_failures", "print_prose", "print_selfcheck", "print_skips",
           "print_summary", "progress_bar"]


def make_console() -> Console:
    """The terminal's width, or $COLUMNS (80 when unset) when piped; long ids are soft-wrapped, never cut."""
    return Console(stderr=False)


@contextmanager
def progress_bar(console: Console, total: int) -> Iterator[Callable[[Any, list[dict[str, Any]]], None]]:
    """A progress bar; yields the callback the runner calls after each case."""
    counts = {"failed": 0, "error": 0}
    with Progress(TextColumn("[bold]checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[status]}"), console=console, transient=False,
                  disable=not console.is_terminal and total == 0) as progress:
        task = progress.add_task("cases", total=total, status="")

        def advance(case: Any, records: list[dict[str, Any]]) -> None:
            # Counted per case as the closing totals count it: an error, else a failure.
            statuses = {r["status"] for r in records}
            if "error" in statuses:
                counts["error"] += 1
            elif "failed" in statuses:
                counts["failed"] += 1
            text = f"failed {counts['failed']}  error {counts['error']}  (at {case.layer})"
            progress.update(task, advance=1, status=text)

        yield advance


_SHORT = {"output": "out", "grad_input": "d_in", "grad_weight": "d_w", "grad_bias": "d_b", OTHER: "other"}
GROUPS_SHOWN = 6


def print_summary(console: Console, summary: pd.DataFrame) -> None:
    """The per-layer table: case counts, and per tensor the worst error relative to its tolerance.

    Layers the implementation lacks are named on one line below the table.
    """
    missing = [row["layer"] for row in summary.to_dict(orient="records") if row.get("note") == "not implemented"]
    summary = summary[summary["note"].fillna("") != "not implemented"]
    table = Table(title="worst error / tolerance per tensor (> 1 fails)", box=None, padding=(0, 1),
                  pad_edge=False, collapse_padding=True, header_style="bold underline")
    table.add_column("layer", overflow="fold")
    for column in ("pass", "fail", "err", "skip"):
        table.add_column(column, justify="right")
    tensors = [t for t in DISPLAY_TENSORS if summary.get(f"{t}_ratio") is not None
               and (summary[f"{t}_ratio"].notna().any() or (summary[f"{t}_kind"].fillna("") != "").any())]
    for tensor in tensors:
        table.add_column(_SHORT[tensor], justify="right")
    notes = any(row.get("note") for row in summary.to_dict(orient="records"))
    if notes:
        table.add_column("note")
    for row in summary.to_dict(orient="records"):
        bad = row["failed"] > 0 or row["error"] > 0
        cells = [Text(row["layer"], style="red bold" if bad else "")]
        cells += [Text(str(row[c]), style="red" if c in ("failed", "error") and row[c] else "")
                  for c in ("passed", "failed", "error", "skipped")]
        for tensor in tensors:
            failing = row.get(f"{tensor}_failing") is True
            cells.append(Text(tensor_cell(row, tensor, torch=False), style="red bold" if failing else ""))
        if notes:
            cells.append(Text(row.get("note") or "", style="dim"))
        table.add_row(*cells)
    console.print(table)
    if OTHER in tensors:
        failing = [f"{row['layer']}: {row[OTHER + '_tensor']}" for row in summary.to_dict(orient="records")
                   if row.get(f"{OTHER}_failing") is True]
        legend = "other: worst further output or gradient (new_running_var, h_n, grad_h0, ...)"
        console.print(Text(legend + (f"; failing: {', '.join(failing)}" if failing else ""), style="dim"))
    if missing:
        console.print(Text(f"not implemented: {', '.join(missing)}", style="dim"))


def print_prose(console: Console, text: str, indent: int = 0, hanging: int = 4, style: str | None = None) -> None:
    """A line of prose wrapped at words to the console's width: its first line indented by
    ``indent`` spaces, the lines it continues on by ``hanging`` more, none padded with trailing
    spaces (rich's padding would pad every line to the full width)."""
    lines = textwrap.wrap(text, width=max(40, console.width), initial_indent=" " * indent,
                          subsequent_indent=" " * (indent + hanging), break_long_words=False, break_on_hyphens=False)
    for line in lines or [""]:
        console.print(Text(line, style=style or ""), soft_wrap=True)


def print_failures(console: Console, groups: Sequence[FailureGroup], verbose: bool = False) -> None:
    """Failing cases by layer and cause: count, the worst case's id in full, its reason, the rerun command.

    Ids and commands are printed whole (soft-wrapped by the terminal, never cut); without
    ``verbose`` only the first groups are shown, with how to see the rest.
    """
    if not groups:
        return
    shown = list(groups) if verbose else list(groups)[:GROUPS_SHOWN]
    total = sum(g.count for g in groups)
    console.print(Text(f"failing cases: {total} in {len(groups)} group(s) by layer and cause", style="bold"))
    for group in shown:
        head = f"{group.layer}: {group.cause}, {group.count} case{'s' if group.count != 1 else ''} ({group.status})"
        console.print(Text(head, style="red bold"))
        console.print(Text(f"  worst: {group.case}"), soft_wrap=True)
        print_prose(console, group.reason, indent=2, hanging=0)
        if group.diagnosis and group.diagnosis != group.cause:
            print_prose(console, f"diagnosis: {group.diagnosis}", indent=2, hanging=0, style="yellow")
        console.print(Text(f"  rerun: {group.command}", style="cyan"), soft_wrap=True)
    if len(shown) < len(groups):
        console.print(Text(f"... {len(groups) - len(shown)} more group(s): run again with -v to list all, "
                           "or see summary.md", style="dim"))


def print_skips(console: Console, rows: Sequence[dict[str, Any]]) -> None:
    """Each layer's skip reasons once, with how many cases each skipped."""
    if not rows:
        return
    console.print(Text(f"skipped cases: {sum(r['cases'] for r in rows)}", style="bold"))
    for row in rows:
        print_prose(console, f"{row['layer']}: {row['cases']} {row['reason']}", indent=2, style="dim")


_CLEAR_DISAGREEMENT = 1e-3


def print_selfcheck(console: Console, records: Any) -> None:
    """Tensors whose backward disagrees with the implementation's own forward (finite differences),
    most telling where they passed against torch: code whose result depends on more than its
    inputs (a forward memoised on x alone, state from earlier calls)."""
    # Clear disagreements only: a finite difference near a kink or a saturated tanh can cross the
    # column's limit (1e-5) by a little on correct code.
    disagreeing = [r for r in records if str(r.get("selfcheck") or "").startswith("backward disagrees")
                   and record_number(r.get("selfcheck_error")) >= _CLEAR_DISAGREEMENT]
    if not disagreeing:
        return
    cases = {r.get("case") for r in disagreeing}
    wrong_forward = {r.get("case") for r in records if r.get("tensor") == "output" and r.get("status") == "failed"}
    passing = [r for r in disagreeing if r.get("status") == "passed"]
    hidden = sum(1 for r in passing if r.get("case") not in wrong_forward)
    if hidden:  # right against torch, forward too, yet not the derivative of its own forward
        why = (f"{hidden} of them passing against torch with a passing forward (does the result depend on more "
               "than the inputs: a cache keyed on x alone, state from earlier calls?)")
    elif passing:  # the gradients are right: it is the forward that they are not the derivative of
        why = f"{len(passing)} of them passing against torch in cases whose output fails: the forward is what is wrong"
    else:  # failing against torch too: the self-check only confirms where the mistake is
        why = "all of them failing against torch too: the backward is not the derivative of this forward"
    print_prose(console, f"self-check: the backward disagrees with its own forward on {len(disagreeing)} "
                f"tensor(s) of {len(cases)} case(s), {why}; see the selfcheck column of cases.csv", style="yellow")


def print_coverage(console: Console, rows: Sequence[dict[str, Any]], skipped: int = 0, checked: int = 1) -> None:
    """One line per layer: required values and pairs held, infeasible ones named. The coverage is
    that of the planned cases: ``skipped`` of them (refused by the code when run) and ``checked``
    (cases not skipped) say how much of it was checked."""
    complete = all(row["complete"] for row in rows)
    held = (f"{sum(r['held'] for r in rows)} of {sum(r['required'] for r in rows)} required values and pairs held, "
            f"{sum(r['infeasible'] for r in rows)} infeasible under torch's rules")
    if not checked:
        print_prose(console, f"coverage: NONE, every planned case was skipped (the plan: {held})")
    else:
        note = (f"; {skipped} planned case{' was' if skipped == 1 else 's were'} skipped when run"
                if skipped else "")
        print_prose(console, f"coverage: {'complete' if complete else 'INCOMPLETE'} ({held}{note})")
    for row in rows:
        if row["infeasible"] or not row["complete"]:
            print_prose(console, f"{row['layer']}: infeasible {row['infeasible items']}"
                        + ("" if row["complete"] else f"; MISSING {row['missing']}"), indent=2)
