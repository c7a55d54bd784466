"""Stage 6, report: result records in, tables, files, plots and console output out.

- :mod:`.tables`: records as pandas frames (cases.csv's rows, per-case statuses, per-layer summary);
- :mod:`.ranking`: which failure is worst (errors, then shape/dtype/non-finite, then error / tolerance);
- :mod:`.groups`: failing cases by layer and cause with their rerun commands; skip reasons;
- :mod:`.files`: the report files (cases.csv, summary.md, summary.html, junit.xml, results.json, plots),
  written by :mod:`.markdown`, :mod:`.html`, :mod:`.junit`, :mod:`.plots` and :mod:`.heatmaps`;
- :mod:`.diff`: two runs compared (regressions, fixes, errors grown tenfold, added and removed cases);
- :mod:`.console`: the rich progress bar, summary table and failure groups.

It knows records only (plain dicts), never how they were produced.
"""
from __future__ import annotations

from .files import append_step_summary, case_figure_path, load_results, write_reports
from .groups import failure_groups, skip_reasons
from .tables import FIRST_COLUMNS, case_statuses, cases_frame, display_summary, summary_frame

__all__ = ["FIRST_COLUMNS", "append_step_summary", "case_figure_path", "case_statuses", "cases_frame",
           "display_summary", "failure_groups", "load_results", "skip_reasons", "summary_frame", "write_reports"]
