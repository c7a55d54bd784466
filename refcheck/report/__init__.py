"""Stage 6, report: result records in, tables, files and console output out.

- :mod:`.tables`: records as pandas frames (cases.csv's rows, per-case statuses, per-layer summary);
- :mod:`.files`: the report files (cases.csv, summary.md, summary.html, junit.xml, results.json);
- :mod:`.console`: the rich progress bar and summary table.

It knows records only (plain dicts), never how they were produced.
"""
from __future__ import annotations

from .files import write_reports
from .tables import FIRST_COLUMNS, case_statuses, cases_frame, display_summary, summary_frame

__all__ = ["FIRST_COLUMNS", "case_statuses", "cases_frame", "display_summary", "summary_frame", "write_reports"]
