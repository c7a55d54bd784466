"""Result records as pandas tables, and the report files (csv, md, html, junit xml, json).

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

from .specs import LAYERS

__all__ = ["FIRST_COLUMNS", "case_statuses", "cases_frame", "summary_frame", "write_reports"]

FIRST_COLUMNS = ["layer", "case", "tensor", "dtype", "status", "reason", "diagnosis", "max_abs_error",
                 "max_rel_error", "error_eps", "torch_error_eps", "tolerance_eps", "worst_index", "mismatched",
                 "total", "selfcheck", "selfcheck_error"]
_LAST_COLUMNS = ["values", "seed", "duration_s"]
_TENSORS = ("output", "grad_input", "grad_weight", "grad_bias")
_STATUS_ORDER = {"error": 0, "failed": 1, "passed": 2, "skipped": 3}


def cases_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (case, compared tensor), columns in the documented order (cases.csv)."""
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "traceback"} for r in records])
    for column in FIRST_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    hyper = [name for spec in LAYERS.values() for name in spec.hyper_names]
    hyper = [c for c in dict.fromkeys(hyper) if c in frame.columns]
    shapes = sorted(c for c in frame.columns if c.endswith("_shape"))
    rest = [c for c in frame.columns if c not in FIRST_COLUMNS + hyper + shapes + _LAST_COLUMNS]
    tail = [c for c in _LAST_COLUMNS if c in frame.columns]
    return frame[FIRST_COLUMNS + hyper + shapes + rest + tail]


def case_statuses(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per case: its worst status (error > failed > passed > skipped) and first reason."""
    if frame.empty:
        return pd.DataFrame(columns=["layer", "case", "status", "reason"])
    ranked = frame.assign(_rank=frame["status"].map(_STATUS_ORDER)).sort_values("_rank", kind="stable")
    first = ranked.groupby("case", sort=False).first().reset_index()
    return first[["layer", "case", "status", "reason"]]


def summary_frame(frame: pd.DataFrame, not_implemented: Iterable[str] = ()) -> pd.DataFrame:
    """One row per layer: case counts by status, worst error (eps) of each compared tensor next to
    torch's own error at that case, and the worst case's id."""
    rows = []
    statuses = case_statuses(frame)
    for layer in dict.fromkeys(frame["layer"]) if not frame.empty else []:
        per_case = statuses[statuses["layer"] == layer]["status"].value_counts()
        layer_rows = frame[frame["layer"] == layer]
        row: dict[str, Any] = {"layer": layer, "cases": int(per_case.sum()),
                               "passed": int(per_case.get("passed", 0)), "failed": int(per_case.get("failed", 0)),
                               "error": int(per_case.get("error", 0)), "skipped": int(per_case.get("skipped", 0))}
        worst_case, worst_value = "", -1.0
        for tensor in _TENSORS:
            rows_t = layer_rows[(layer_rows["tensor"] == tensor) & layer_rows["error_eps"].notna()]
            if rows_t.empty:
                row[f"{tensor}_eps"] = math.nan
                row[f"{tensor}_torch_eps"] = math.nan
                continue
            worst = rows_t.loc[rows_t["error_eps"].astype(float).idxmax()]
            row[f"{tensor}_eps"] = float(worst["error_eps"])
            row[f"{tensor}_torch_eps"] = float(worst["torch_error_eps"])
            ratio = float(worst["error_eps"]) / float(worst["tolerance_eps"])
            if ratio > worst_value:
                worst_case, worst_value = str(worst["case"]), ratio
        bad = statuses[(statuses["layer"] == layer) & statuses["status"].isin(["failed", "error"])]
        row["worst_case"] = str(bad["case"].iloc[0]) if not bad.empty else worst_case
        row["note"] = ""
        row["diagnosis"] = _main_diagnosis(layer_rows)
        rows.append(row)
    for layer in not_implemented:
        rows.append({"layer": layer, "cases": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0,
                     "worst_case": "", "note": "not implemented"})
    columns = ["layer", "cases", "passed", "failed", "error", "skipped"]
    columns += [f"{t}{suffix}" for t in _TENSORS for suffix in ("_eps", "_torch_eps")] + ["worst_case", "note", "diagnosis"]
    return pd.DataFrame(rows, columns=columns)


def _main_diagnosis(layer_rows: pd.DataFrame) -> str:
    """The most frequent diagnosis among a layer's failed cases, with how many cases it explains."""
    failed = layer_rows[(layer_rows["status"] == "failed") & layer_rows["diagnosis"].notna()
                        & (layer_rows["diagnosis"].astype(str) != "")]
    if failed.empty:
        return ""
    per_case = failed.groupby("case")["diagnosis"].first().value_counts()
    text, count = per_case.index[0], int(per_case.iloc[0])
    more = f"; {len(per_case) - 1} other diagnoses" if len(per_case) > 1 else ""
    return f"{text} ({count} case{'s' if count != 1 else ''}{more})"


def _display_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Errors as 'impl (torch)' in epsilons, one column per tensor, for Markdown and HTML."""
    shown = summary[["layer", "cases", "passed", "failed", "error", "skipped"]].copy()
    for tensor in _TENSORS:
        shown[f"{tensor} eps (torch)"] = [
            "" if pd.isna(e) else f"{e:.3g} ({t:.3g})"
            for e, t in zip(summary[f"{tensor}_eps"], summary[f"{tensor}_torch_eps"])]
    shown["worst case"] = summary["worst_case"]
    shown["note"] = summary["note"]
    shown["diagnosis"] = summary["diagnosis"].fillna("")
    return shown


def _markdown(summary: pd.DataFrame, meta: Mapping[str, Any]) -> str:
    lines = [f"# refcheck summary: {meta.get('implementation', '')}", "",
             f"{meta.get('totals', '')}", "",
             "Errors are in units of the dtype's epsilon relative to the tensor's largest reference value; "
             "torch's own error at the case's dtype is in brackets.", "",
             _display_summary(summary).to_markdown(index=False), ""]
    coverage = meta.get("coverage") or []
    if coverage:
        lines += ["## Coverage", "", pd.DataFrame(coverage).to_markdown(index=False), ""]
    return "\n".join(lines)


def _html(summary: pd.DataFrame, cases: pd.DataFrame, meta: Mapping[str, Any]) -> str:
    shown = _display_summary(summary)

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
            staged[name] = temporary
        for name, temporary in staged.items():
            os.replace(temporary, out / name)
    finally:
        for temporary in staged.values():
            if os.path.exists(temporary):
                os.unlink(temporary)
    return {name: out / name for name in contents}
