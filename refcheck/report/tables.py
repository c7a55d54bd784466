"""Result records as pandas tables: cases.csv's frame, per-case statuses, the per-layer summary."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..specs import LAYERS

__all__ = ["FIRST_COLUMNS", "case_statuses", "cases_frame", "display_summary", "summary_frame"]

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
    shapes = sorted(c for c in frame.columns if c.endswith("_shape") and c not in hyper)  # not normalized_shape
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


def display_summary(summary: pd.DataFrame) -> pd.DataFrame:
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
