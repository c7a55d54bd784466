"""Terminal output: a progress bar over the sweep and the per-layer summary table (rich)."""
from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

__all__ = ["make_console", "progress_bar", "print_coverage", "print_summary"]

_TENSORS = ("output", "grad_input", "grad_weight", "grad_bias")


def make_console() -> Console:
    # Wide enough for the summary when output is piped to a file or a CI log.
    return Console(stderr=False, width=None if sys.stdout.isatty() else 160)


@contextmanager
def progress_bar(console: Console, total: int) -> Iterator[Callable[[Any, list[dict[str, Any]]], None]]:
    """A progress bar; yields the callback the runner calls after each case."""
    counts = {"failed": 0, "error": 0}
    with Progress(TextColumn("[bold]checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[status]}"), console=console, transient=False,
                  disable=not console.is_terminal and total == 0) as progress:
        task = progress.add_task("cases", total=total, status="")

        def advance(case: Any, records: list[dict[str, Any]]) -> None:
            statuses = {r["status"] for r in records}
            for status in ("failed", "error"):
                counts[status] += status in statuses
            text = f"{case.layer}  failed {counts['failed']}  error {counts['error']}"
            progress.update(task, advance=1, status=text)

        yield advance


def _cell(error: float, torch_error: float) -> str:
    if error is None or (isinstance(error, float) and math.isnan(error)):
        return ""
    return f"{error:.3g} ({torch_error:.3g})"


def print_summary(console: Console, summary: pd.DataFrame) -> None:
    """The per-layer table: counts, worst error per tensor in eps with torch's in brackets, worst case."""
    table = Table(title="refcheck: errors in eps of the dtype (torch's own error in brackets)", show_lines=False)
    for column in ("layer", "cases", "passed", "failed", "error", "skipped"):
        table.add_column(column, justify="right" if column != "layer" else "left")
    for tensor in _TENSORS:
        table.add_column(tensor, justify="right")
    table.add_column("worst case / note")
    for row in summary.itertuples(index=False):
        bad = row.failed > 0 or row.error > 0
        style = "red" if bad else ("dim" if row.note else None)
        cells = [row.layer, str(row.cases), str(row.passed), str(row.failed), str(row.error), str(row.skipped)]
        cells += [_cell(getattr(row, f"{t}_eps"), getattr(row, f"{t}_torch_eps")) for t in _TENSORS]
        cells.append(row.note or row.worst_case)
        # Text, not markup: case ids contain brackets.
        table.add_row(*[Text(cell) for cell in cells], style=style)
    console.print(table)
    for row in summary.itertuples(index=False):
        if isinstance(row.diagnosis, str) and row.diagnosis:
            console.print(Text(f"diagnosis {row.layer}: {row.diagnosis}", style="yellow"))


def print_coverage(console: Console, rows: Sequence[dict[str, Any]]) -> None:
    """One line per layer: required values and pairs held, infeasible ones named."""
    complete = all(row["complete"] for row in rows)
    console.print(f"[bold]coverage[/]: {'complete' if complete else 'INCOMPLETE'} "
                  f"({sum(r['held'] for r in rows)} of {sum(r['required'] for r in rows)} required values and "
                  f"pairs held, {sum(r['infeasible'] for r in rows)} infeasible under torch's rules)")
    for row in rows:
        if row["infeasible"] or not row["complete"]:
            console.print(Text(f"  {row['layer']}: infeasible {row['infeasible items']}"
                               + ("" if row["complete"] else f"; MISSING {row['missing']}")))
