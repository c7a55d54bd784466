"""Result records as pandas tables: cases.csv's frame, per-case statuses, the per-layer summary."""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..specs import LAYERS
from .ranking import cause, error_ratio, rank, reason_kind

__all__ = ["DISPLAY_TENSORS", "FIRST_COLUMNS", "NOT_IN_CSV", "OTHER", "TENSORS", "case_statuses", "cases_csv_chunks", "cases_frame",
           "display_summary", "layer_summary_row", "summary_frame", "summary_rows", "tensor_cell"]

FIRST_COLUMNS = ["layer", "case", "tensor", "dtype", "status", "reason", "diagnosis", "implementation", "max_abs_error",
                 "max_rel_error", "error_eps", "torch_error_eps", "tolerance_eps", "worst_index", "mismatched",
                 "total", "selfcheck", "selfcheck_error"]
_LAST_COLUMNS = ["values", "seed", "duration_s"]
NOT_IN_CSV = ("traceback", "stdout", "stderr")
"""Record fields left out of cases.csv (they are in results.json)."""
TENSORS = _TENSORS = ("output", "grad_input", "grad_weight", "grad_bias")
OTHER = "other"
"""The summary's pseudo-tensor for every other compared tensor of a layer (new_running_mean, h_n,
grad_weight_ih, ...): its worst one, named in ``other_tensor``."""
DISPLAY_TENSORS = (*TENSORS, OTHER)
_STATUS_ORDER = {"error": 0, "failed": 1, "passed": 2, "skipped": 3}


def cases_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (case, compared tensor), columns in the documented order (cases.csv)."""
    rows = [{k: v for k, v in r.items() if k not in NOT_IN_CSV} for r in records]
    frame = pd.DataFrame(rows)
    # A hyperparameter of some layers only (groups, dim, padding_idx) holds ints and gaps: written as
    # ints (pandas would make the column float: "groups 2.0").
    integer = {column for column in frame.columns if frame[column].dtype.kind == "f"}
    for row in rows:
        integer -= {key for key, value in row.items() if key in integer and value is not None and not _is_int(value)}
    for column in integer:
        frame[column] = frame[column].astype("Int64")
    for column in FIRST_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    return frame[_column_order(list(frame.columns))]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _column_order(columns: list[str]) -> list[str]:
    hyper = [name for spec in LAYERS.values() for name in spec.hyper_names]
    hyper = [c for c in dict.fromkeys(hyper) if c in columns]
    shapes = sorted(c for c in columns if c.endswith("_shape") and c not in hyper)  # not normalized_shape
    rest = [c for c in columns if c not in FIRST_COLUMNS + hyper + shapes + _LAST_COLUMNS]
    tail = [c for c in _LAST_COLUMNS if c in columns]
    return FIRST_COLUMNS + hyper + shapes + rest + tail


def cases_csv_chunks(records: Iterable[Mapping[str, Any]], chunk: int = 4096) -> Iterator[str]:
    """cases.csv in pieces, byte for byte ``cases_frame(records).to_csv(index=False)``, holding about
    ``chunk`` rows at a time. ``records`` is walked twice: first for the columns and the types each
    column holds (a column is written as pandas writes the dtype the whole column would have), then
    to write the rows with the csv module, as pandas does.

    Records of one layer share their keys and the types of their values: the work per column is
    done once per such shape of record (its signature), not once per record."""
    columns: dict[str, None] = {}
    kinds: dict[str, dict[Any, Any]] = {}  # column -> one value per kind of value it holds
    complete: dict[str, bool] = {}  # column -> whether every record so far has it
    seen: set[tuple[Any, ...]] = set()
    rows = 0
    for record in records:
        rows += 1
        keys = tuple(record)
        types = tuple(map(type, record.values()))
        # Which floats are NaN is part of the shape: a NaN is a kind of value of its own to pandas.
        floats = tuple(float(value) != float(value) for value in record.values() if isinstance(value, float))
        signature = (keys, types, floats)
        if signature in seen:
            continue
        seen.add(signature)
        for key, value in record.items():
            if key in NOT_IN_CSV:
                continue
            if key not in columns:
                columns[key] = None
                kinds[key] = {}
                complete[key] = rows == 1
            kinds[key].setdefault((type(value), isinstance(value, float) and value != value), value)
        for key in columns:
            if key not in record:
                complete[key] = False
    if not rows:
        yield cases_frame([]).to_csv(index=False)
        return
    # A column some record lacks also holds None (the order of the kinds does not change the dtype).
    for key, always in complete.items():
        if not always:
            kinds[key].setdefault(type(None), None)
    names = list(columns)
    for column in FIRST_COLUMNS:
        if column not in columns:
            names.append(column)
            kinds[column] = {type(None): None}
    order = _column_order(names)
    formats = [_csv_format(_csv_dtype(list(kinds[name].values()))) for name in order]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # what pandas' to_csv writes with
    writer.writerow(order)
    position = {name: i for i, name in enumerate(order)}
    blank = [""] * len(order)
    plans: dict[tuple[str, ...], list[tuple[int, Callable[[Any], str]] | None]] = {}
    for record in records:
        keys = tuple(record)
        plan = plans.get(keys)
        if plan is None:  # where each of this shape of record's values goes, and how it is written
            plan = plans[keys] = [(position[key], formats[position[key]]) if key in position else None
                                  for key in keys]
        row = blank.copy()  # a missing value and None are both written empty
        for place, value in zip(plan, record.values()):
            if place is not None and value is not None:
                # A string is only ever in a text column, written as it is.
                row[place[0]] = value if type(value) is str else place[1](value)
        writer.writerow(row)
        if buffer.tell() >= chunk * 256:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_dtype(values: list[Any]) -> Any:
    """The dtype of a column holding these kinds of values in :func:`cases_frame`: ints with gaps
    are Int64 there, as pandas would otherwise make them float."""
    dtype = pd.Series(values).dtype
    present = [value for value in values if value is not None]
    if dtype.kind == "f" and present and all(_is_int(value) for value in present):
        return pd.Int64Dtype()
    return dtype


def _csv_format(dtype: Any) -> Callable[[Any], str]:
    """How ``to_csv`` writes a value of a column of this dtype (the dtype the whole column has)."""
    kind = getattr(dtype, "kind", "O")
    if kind == "f":
        return _csv_float
    if kind in "iu":
        return lambda value: str(int(value))
    if kind == "b":
        return lambda value: str(bool(value))
    return _csv_text


def _csv_float(value: Any) -> str:
    if value is None:
        return ""
    number = float(value)
    return "" if number != number else repr(number)


def _csv_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def case_statuses(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per case: its worst status (error > failed > passed > skipped) and first reason."""
    if frame.empty:
        return pd.DataFrame(columns=["layer", "case", "status", "reason"])
    ranked = frame.assign(_rank=frame["status"].map(_STATUS_ORDER)).sort_values("_rank", kind="stable")
    first = ranked.groupby("case", sort=False).first().reset_index()
    return first[["layer", "case", "status", "reason"]]


def _short_kind(record: Mapping[str, Any]) -> str:
    """'' for a numeric comparison, else what the cell shows instead of a number ('error', 'shape', ...)."""
    status = str(record.get("status"))
    if status == "error":
        return "error"
    kind = reason_kind(status, str(record.get("reason") or ""))
    if status != "failed" or kind == "wrong values":
        return ""
    return _KIND_WORDS.get(kind, kind)


_KIND_WORDS = {"wrong shape": "shape", "wrong dtype": "dtype", "non-finite values": "non-finite",
               "input mutated in place": "mutated", "output buffer reused": "reused", "wrong number of gradients": "grad count",
               "tensor missing (None)": "None", "not a numpy array": "type"}


def summary_frame(frame: pd.DataFrame, not_implemented: Iterable[str] = (), *,
                  rows: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per layer: case counts by status and, per compared tensor, its worst record.

    The worst record ranks errors, then structural failures (shape, dtype, non-finite, ...), then
    the largest error relative to the tolerance (``ratio``, dtype-free). Per tensor the columns are
    ``<t>_ratio`` and torch's own ``<t>_torch_ratio``, the same in epsilons of that case's dtype
    (``<t>_eps``, ``<t>_torch_eps``, ``<t>_dtype``), ``<t>_kind`` (non-numeric failure, e.g. 'shape')
    and ``<t>_failing``. Every other compared tensor of a layer (the extra outputs of multi-output
    layers such as ``new_running_var`` or ``h_n``, and their gradients) is folded into the ``other``
    columns, the worst of them named in ``other_tensor``. ``worst_case`` is the worst case of the
    layer over all tensors.
    ``rows``: the layers' rows already computed (:func:`summary_rows`, layer by layer); ``frame`` is then unused.
    """
    rows = summary_rows(frame) if rows is None else list(rows)
    for layer in not_implemented:
        rows.append({"layer": layer, "cases": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0,
                     "worst_case": "", "note": "not implemented"})
    columns = ["layer", "cases", "passed", "failed", "error", "skipped"]
    columns += [f"{t}{suffix}" for t in DISPLAY_TENSORS for suffix in _TENSOR_SUFFIXES]
    columns += [f"{OTHER}_tensor", "worst_case", "note", "diagnosis"]
    return pd.DataFrame(rows, columns=columns)


def summary_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The summary's rows of the layers in ``frame`` (each row depends on its own layer's records only)."""
    layers: dict[Any, dict[str, list[dict[str, Any]]]] = {}
    for record in frame.to_dict(orient="records") if not frame.empty else []:
        layers.setdefault(record["layer"], {}).setdefault(str(record["case"]), []).append(record)
    return [layer_summary_row(layer, cases.values()) for layer, cases in layers.items()]


_TENSOR_SUFFIXES = ("_ratio", "_torch_ratio", "_eps", "_torch_eps", "_dtype", "_kind", "_failing")


def layer_summary_row(layer: str, cases: Iterable[Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """The summary row of one layer from its cases' records, read one case at a time: the row
    :func:`summary_rows` gives for the layer, without holding the layer's records."""
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    total = 0
    worst: dict[str, Mapping[str, Any]] = {}  # compared tensor -> its worst record (the first of equals)
    worst_rank: dict[str, Any] = {}  # compared tensor -> rank of that record
    worst_other: Mapping[str, Any] | None = None
    other_rank: Any = None
    causes: dict[str, str] = {}  # case -> the cause of its first diagnosed failed record
    for rows in cases:
        total += 1
        status = min((str(r.get("status")) for r in rows), key=lambda s: _STATUS_ORDER.get(s, 4))
        if status in counts:
            counts[status] += 1
        for record in rows:
            if record.get("status") == "skipped":
                continue
            tensor = record["tensor"]
            record_rank = rank(record)
            if tensor not in worst or record_rank > worst_rank[tensor]:
                worst[tensor], worst_rank[tensor] = record, record_rank
            if tensor not in _TENSORS and (worst_other is None or record_rank > other_rank):
                worst_other, other_rank = record, record_rank
            diagnosis = record.get("diagnosis")
            if (record.get("status") == "failed" and isinstance(diagnosis, str) and diagnosis != ""
                    and str(record["case"]) not in causes):
                causes[str(record["case"])] = cause(record)
    row: dict[str, Any] = {"layer": layer, "cases": total, **counts}
    row[f"{OTHER}_tensor"] = str(worst_other["tensor"]) if worst_other is not None else ""
    worst_overall: Mapping[str, Any] | None = None
    for tensor in DISPLAY_TENSORS:
        chosen = worst_other if tensor == OTHER else worst.get(tensor)
        row.update(_tensor_columns(tensor, chosen))
        if chosen is not None and (worst_overall is None or rank(chosen) > rank(worst_overall)):
            worst_overall = chosen
    row["worst_case"] = str(worst_overall["case"]) if worst_overall is not None else ""
    row["note"] = ""
    row["diagnosis"] = _most_frequent_cause([causes[case] for case in sorted(causes)])
    return row


def _tensor_columns(tensor: str, worst: Mapping[str, Any] | None) -> dict[str, Any]:
    """A tensor's summary columns from its worst record (empty when the layer has no such tensor)."""
    if worst is None:
        return {**{f"{tensor}{s}": math.nan for s in ("_ratio", "_torch_ratio", "_eps", "_torch_eps")},
                f"{tensor}_dtype": "", f"{tensor}_kind": "", f"{tensor}_failing": False}
    allowed = _number(worst.get("tolerance_eps"))
    torch_eps = _number(worst.get("torch_error_eps"))
    return {f"{tensor}_ratio": error_ratio(worst),
            f"{tensor}_torch_ratio": torch_eps / allowed if allowed > 0 else math.nan,
            f"{tensor}_eps": _number(worst.get("error_eps")), f"{tensor}_torch_eps": torch_eps,
            f"{tensor}_dtype": str(worst.get("dtype") or ""), f"{tensor}_kind": _short_kind(worst),
            f"{tensor}_failing": worst.get("status") in ("failed", "error")}


def _most_frequent_cause(causes: list[str]) -> str:
    """'cause (n cases; k other diagnoses)' for the most frequent of the cases' causes (ties: the first)."""
    if not causes:
        return ""
    counted: dict[str, int] = {}
    for each in causes:
        counted[each] = counted.get(each, 0) + 1
    text, count = max(counted.items(), key=lambda item: item[1])  # max keeps the first of equal counts
    more = f"; {len(counted) - 1} other diagnoses" if len(counted) > 1 else ""
    return f"{text} ({count} case{'s' if count != 1 else ''}{more})"


def _number(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def tensor_cell(summary_row: Mapping[str, Any], tensor: str, torch: bool = True) -> str:
    """One tensor's worst error as shown: 'err/tol (torch's err/tol)', or the failure kind; the
    ``other`` cell names its tensor when torch's error is shown too ('0.05 (0.01) new_running_var')."""
    name = summary_row.get(f"{OTHER}_tensor") if tensor == OTHER and torch else ""
    suffix = f" {name}" if isinstance(name, str) and name else ""
    kind = summary_row.get(f"{tensor}_kind")
    if isinstance(kind, str) and kind:
        return kind + suffix
    ratio = summary_row.get(f"{tensor}_ratio")
    if ratio is None or pd.isna(ratio):
        return ""
    if not torch:
        return f"{ratio:.2g}"
    return f"{ratio:.2g} ({summary_row.get(f'{tensor}_torch_ratio'):.2g}){suffix}"


def display_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Per tensor, the worst error relative to the tolerance with torch's own in brackets (md, html)."""
    shown = summary[["layer", "cases", "passed", "failed", "error", "skipped"]].copy()
    records = summary.to_dict(orient="records")
    for tensor in _TENSORS:
        shown[f"{tensor} err/tol (torch)"] = [tensor_cell(row, tensor) for row in records]
    if OTHER + "_tensor" in summary and (summary[OTHER + "_tensor"].fillna("") != "").any():
        shown["other tensors err/tol (torch)"] = [tensor_cell(row, OTHER) for row in records]
    shown["worst case"] = summary["worst_case"]
    shown["note"] = summary["note"].fillna("")
    shown["diagnosis"] = summary["diagnosis"].fillna("")
    return shown
