"""summary.html: one self-contained page (plots embedded as data URIs, no network): the overview
plot, the per-layer table with failing cells marked, the failing cases with reason, diagnosis and
rerun command, the per-layer heatmaps, skip reasons and coverage.
"""
from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import pandas as pd

from .groups import FailureGroup
from .markdown import EXPLANATION
from .tables import DISPLAY_TENSORS, OTHER, tensor_cell

__all__ = ["summary_html"]

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top} th{background:#f2f2f2;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failing td{background:#fdecea} td.fail{background:#f5b7b1 !important;font-weight:bold;color:#7b1d14}
code{font-size:12px;background:#f6f6f6;padding:1px 3px;word-break:break-all}
.verdict{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:bold}
.bad{background:#f5b7b1;color:#7b1d14} .good{background:#d4efdf;color:#145a32}
img{max-width:100%;border:1px solid #eee} .note{color:#666;font-size:13px}
.heatmaps{display:flex;flex-wrap:wrap;gap:12px} .heatmaps figure{margin:0}
"""


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[tuple[str, str]]], row_classes: Sequence[str]) -> str:
    """rows: cells as (html content, css class)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for cells, row_class in zip(rows, row_classes):
        tds = "".join(f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>" for content, css in cells)
        body.append(f'<tr class="{row_class}">{tds}</tr>' if row_class else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _layer_table(summary: pd.DataFrame) -> str:
    header = ["layer", "cases", "passed", "failed", "error", "skipped"]
    shown = [t for t in DISPLAY_TENSORS if t != OTHER or (summary.get(f"{OTHER}_tensor") is not None
                                                           and (summary[f"{OTHER}_tensor"].fillna("") != "").any())]
    header += [f"{'other tensors' if t == OTHER else t} err/tol (torch)" for t in shown]
    header += ["worst case", "diagnosis / note"]
    rows, classes = [], []
    for row in summary.to_dict(orient="records"):
        if row.get("note") == "not implemented":
            continue
        bad = row["failed"] > 0 or row["error"] > 0
        cells = [(f"{'✗ ' if bad else ''}{escape(row['layer'])}", "fail" if bad else "")]
        for column in ("cases", "passed", "failed", "error", "skipped"):
            failing = column in ("failed", "error") and row[column] > 0
            cells.append((str(row[column]), "num fail" if failing else "num"))
        for tensor in shown:
            text = tensor_cell(row, tensor)
            failing = row.get(f"{tensor}_failing") is True
            cells.append((("✗ " if failing else "") + escape(text), "num fail" if failing else "num"))
        cells.append((f"<code>{escape(str(row.get('worst_case') or ''))}</code>", ""))
        note = row.get("diagnosis") if isinstance(row.get("diagnosis"), str) and row.get("diagnosis") else row.get("note")
        cells.append((escape(str(note or "")), ""))
        rows.append(cells)
        classes.append("failing" if bad else "")
    return _table(header, rows, classes)


def _failures(groups: Sequence[FailureGroup], figures: Mapping[str, str]) -> str:
    if not groups:
        return "<p>No failing cases.</p>"
    header = ["layer", "cause", "cases", "status", "worst case", "reason", "diagnosis", "rerun", "figure"]
    rows = []
    for g in groups:
        figure = figures.get(g.case)
        link = f'<a href="{escape(figure)}">reference / result / difference</a>' if figure else ""
        rows.append([(escape(g.layer), "fail"), (escape(g.cause), ""), (str(g.count), "num"), (g.status, ""),
                     (f"<code>{escape(g.case)}</code> ({escape(g.tensor)})", ""), (escape(g.reason), ""),
                     (escape(g.diagnosis), ""), (f"<code>{escape(g.command)}</code>", ""), (link, "")])
    return _table(header, rows, ["failing"] * len(rows))


def _plain_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>None.</p>"
    header = list(rows[0])
    cells = [[(escape(str(r.get(h, ""))), "num" if isinstance(r.get(h), (int, float)) else "") for h in header]
             for r in rows]
    return _table(header, cells, [""] * len(cells))


def summary_html(summary: pd.DataFrame, groups: Sequence[FailureGroup], skips: Sequence[Mapping[str, Any]],
                 meta: Mapping[str, Any], plots: Mapping[str, bytes], figures: Mapping[str, str]) -> str:
    """The page. ``plots``: name -> PNG bytes (overview first, then heatmaps by layer);
    ``figures``: case id -> relative link of its reference / result / difference figure."""
    failing = int(summary["failed"].sum() + summary["error"].sum()) if not summary.empty else 0
    verdict = (f'<span class="verdict bad">{failing} failing case(s)</span>' if failing
               else '<span class="verdict good">all checked cases pass</span>')
    parts = [f"<h1>refcheck: {escape(str(meta.get('implementation', '')))}</h1>",
             f"<p>{verdict} &nbsp; {escape(str(meta.get('totals', '')))}</p>"]
    names = list(plots)
    if names:
        parts.append(_image(plots[names[0]], "worst error / tolerance of every layer and tensor"))
    missing = [r["layer"] for r in summary.to_dict(orient="records") if r.get("note") == "not implemented"]
    parts += ["<h2>Layers</h2>", f"<p class='note'>{escape(EXPLANATION)} Cells marked ✗ fail.</p>",
              _layer_table(summary)]
    if missing:
        parts.append(f"<p class='note'>Layers not implemented: {escape(', '.join(missing))}.</p>")
    parts += ["<h2>Failing cases</h2>",
              "<p class='note'>Grouped by layer and cause; each group shows its worst case, its reason and the "
              "command that reruns it (<code>refcheck show ID</code> draws where in the tensor it is wrong).</p>",
              _failures(groups, figures)]
    if len(names) > 1:
        parts += ["<h2>Where the errors are</h2>",
                  "<p class='note'>Worst error / tolerance over each layer's two most telling parameters; "
                  "× marks failing cells, ■ cells whose case raised, · combinations with no case.</p>",
                  '<div class="heatmaps">']
        parts += [f"<figure>{_image(plots[name], name)}</figure>" for name in names[1:]]
        parts.append("</div>")
    parts += ["<h2>Skipped cases</h2>", _plain_table(list(skips)),
              "<h2>Coverage</h2>", _plain_table(list(meta.get("coverage") or []))]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>refcheck summary</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
