"""The report files (csv, md, html, junit xml, json), written from the result records.

Every file is written to a temporary name first and renamed into place only when all of them
are ready, so an interrupted or failed run never leaves a half-written report.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .tables import case_statuses, cases_frame, display_summary, summary_frame

__all__ = ["file_mode", "write_reports"]


def file_mode() -> int:
    """The mode a new file gets under the user's umask (0o644 under the usual 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask

def _markdown(summary: pd.DataFrame, meta: Mapping[str, Any]) -> str:
    lines = [f"# refcheck summary: {meta.get('implementation', '')}", "",
             f"{meta.get('totals', '')}", "",
             "Errors are in units of the dtype's epsilon relative to the tensor's largest reference value; "
             "torch's own error at the case's dtype is in brackets.", "",
             display_summary(summary).to_markdown(index=False), ""]
    coverage = meta.get("coverage") or []
    if coverage:
        lines += ["## Coverage", "", pd.DataFrame(coverage).to_markdown(index=False), ""]
    return "\n".join(lines)


def _html(summary: pd.DataFrame, cases: pd.DataFrame, meta: Mapping[str, Any]) -> str:
    shown = display_summary(summary)

    def highlight(row: pd.Series) -> list[str]:
        bad = row["failed"] > 0 or row["error"] > 0
        return ["background-color: #f8d7da" if bad and col in ("layer", "failed", "error", "worst case") else ""
                for col in row.index]

    table = shown.style.apply(highlight, axis=1).hide(axis="index").to_html()
    failing = cases[cases["status"].isin(["failed", "error"])][["layer", "case", "tensor", "status", "reason"]]
    failing_html = (failing.style.map(lambda _: "background-color: #f8d7da", subset=["status"])
                    .hide(axis="index").to_html() if not failing.empty else "<p>No failing cases.</p>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>refcheck summary</title>"
            f"<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} "
            f"td,th{{border:1px solid #ccc;padding:3px 6px}}</style></head><body>"
            f"<h1>refcheck summary: {meta.get('implementation', '')}</h1><p>{meta.get('totals', '')}</p>"
            f"{table}<h2>Failing cases</h2>{failing_html}</body></html>")


def _junit(frame: pd.DataFrame) -> str:
    suites = ET.Element("testsuites", name="refcheck")
    statuses = case_statuses(frame)
    rows_by_case = {case: rows for case, rows in frame.groupby("case", sort=False)} if not frame.empty else {}
    for layer in dict.fromkeys(statuses["layer"]):
        layer_cases = statuses[statuses["layer"] == layer]
        counts = layer_cases["status"].value_counts()
        suite = ET.SubElement(suites, "testsuite", name=layer, tests=str(len(layer_cases)),
                              failures=str(counts.get("failed", 0)), errors=str(counts.get("error", 0)),
                              skipped=str(counts.get("skipped", 0)))
        for case in layer_cases.itertuples(index=False):
            element = ET.SubElement(suite, "testcase", classname=f"refcheck.{layer}", name=case.case)
            rows = rows_by_case[case.case]
            text = "\n".join(f"{r.tensor}: {r.status}: {r.reason}" for r in rows.itertuples() if r.reason)
            if case.status == "failed":
                ET.SubElement(element, "failure", message=str(case.reason)[:500]).text = text
            elif case.status == "error":
                ET.SubElement(element, "error", message=str(case.reason)[:500]).text = text
            elif case.status == "skipped":
                ET.SubElement(element, "skipped", message=str(case.reason))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def _json_safe(value: Any) -> Any:
    """NaN becomes null and infinities strings, recursively, so the file is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


def write_reports(out_dir: Path | str, records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                  not_implemented: Iterable[str] = ()) -> dict[str, Path]:
    """Write cases.csv, summary.md, summary.html, junit.xml and results.json into ``out_dir``.

    Returns the paths by kind. All files are renamed into place together at the end.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = cases_frame(records)
    summary = summary_frame(frame, not_implemented)
    payload = _json_safe({**meta, "summary": summary.to_dict(orient="records"), "records": list(records)})
    contents = {
        "cases.csv": frame.to_csv(index=False),
        "summary.md": _markdown(summary, meta),
        "summary.html": _html(summary, frame, meta),
        "junit.xml": _junit(frame),
        "results.json": json.dumps(payload, indent=1, default=str, allow_nan=False),
    }
    staged = {}
    try:
        for name, text in contents.items():
            handle, temporary = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.chmod(temporary, file_mode())  # mkstemp's files are private; a report follows the umask
            staged[name] = temporary
        for name, temporary in staged.items():
            os.replace(temporary, out / name)
    finally:
        for temporary in staged.values():
            if os.path.exists(temporary):
                os.unlink(temporary)
    return {name: out / name for name in contents}
