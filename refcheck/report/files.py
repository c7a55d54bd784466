"""The report files, written from the result records: cases.csv, summary.md, summary.html,
junit.xml, results.json and the plots (plots/overview.png, plots/<layer>.png).

Every file is written to a temporary name first and renamed into place only when all of them
are ready, so an interrupted or failed run never leaves a half-written report. summary.md and the
plots hold no times or paths (they are tracked and byte-identical run to run); results.json holds
everything, times included, and is enough to render the rest again (``load_results``).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .groups import FailureGroup, FailureGrouping, SkipCounting
from .figure_drawing import FigureDrawer
from .heatmaps import heatmap_figure
from .html import summary_html
from .junit import junit_chunks, junit_error
from .markdown import summary_markdown
from .plots import overview_figure
from .stream import RecordSource, as_source
from .tables import NOT_IN_CSV, cases_csv_chunks, cases_frame, layer_summary_row, summary_frame

__all__ = ["REPORT_FILES", "Report", "append_step_summary", "build_report", "case_figure_path", "file_mode",
           "load_results", "write_atomically", "write_error_reports", "write_reports"]


def file_mode() -> int:
    """The mode a new file gets under the user's umask (0o644 under the usual 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


PLOTS = "plots"
CASE_FIGURES = "cases"


def case_figure_path(case_id: str) -> str:
    """The figure of one case, relative to the report folder (a safe, stable file name)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).strip("_")[:80]
    return f"{CASE_FIGURES}/{stem}-{zlib.crc32(case_id.encode()):08x}.png"


def _json_safe(value: Any) -> Any:
    """NaN becomes null and infinities strings, recursively, so the file is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


_NUMERIC = ("max_abs_error", "max_rel_error", "error_eps", "torch_error_eps", "tolerance_eps", "selfcheck_error",
            "duration_s")


def load_results(folder: Path | str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(records, meta) of a report folder's results.json; numeric fields back to floats (null -> nan)."""
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results.json (is this a refcheck report folder?)")
    payload = json.loads(path.read_text(encoding="utf-8"))
    records = payload.pop("records", [])
    payload.pop("summary", None)
    for record in records:
        for key in _NUMERIC:
            if key in record:
                value = record[key]
                record[key] = math.nan if value is None else float(value)
    return records, payload


def write_atomically(out: Path, contents: Mapping[str, str | bytes | Iterable[str]],
                     then: Callable[[], Mapping[str, str | bytes | Iterable[str]]] | None = None) -> dict[str, Path]:
    """Write every file under ``out`` to a temporary name, then rename them all into place.

    A file's contents are text, bytes, or an iterable of text pieces written as they come. ``then``
    gives more files, asked for once ``contents`` are written."""
    staged: dict[str, str] = {}
    try:
        for name, data in _then(contents, then):
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            staged[name] = temporary
            with os.fdopen(handle, "wb") as stream:
                if isinstance(data, (str, bytes)):
                    stream.write(data.encode("utf-8") if isinstance(data, str) else data)
                else:
                    for piece in data:
                        stream.write(piece.encode("utf-8"))
            os.chmod(temporary, file_mode())  # mkstemp's files are private; a report follows the umask
        replaced = set()
        try:
            for name, temporary in staged.items():
                if (out / name).is_dir() and not (out / name).is_symlink():
                    shutil.rmtree(out / name)  # a folder where a report goes: a file cannot replace it
                os.replace(temporary, out / name)
                replaced.add(name)
        except BaseException:
            # No earlier (or planted) report outlives a failed write beside this run's files.
            for name in staged:
                if name not in replaced:
                    with contextlib.suppress(OSError):
                        _clear(out / name)
            raise
    finally:
        for temporary in staged.values():
            if os.path.exists(temporary):
                os.unlink(temporary)
    return {name: out / name for name in staged}


def _clear(target: Path) -> None:
    """Remove what stands where a report goes (a file, a link or a folder)."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.is_symlink() or target.exists():
        target.unlink()


def _then(first: Mapping[str, Any], then: Callable[[], Mapping[str, Any]] | None) -> Iterator[tuple[str, Any]]:
    yield from first.items()
    if then is not None:
        yield from then().items()


def _results_json(meta: Mapping[str, Any], summary: Any, records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """results.json in pieces: the object ``{**meta, "summary": ..., "records": [...]}``, its head
    indented, each record on a line of its own (written by json's C encoder: a sweep has thousands)."""
    head = json.dumps(_json_safe({**meta, "summary": summary.to_dict(orient="records"), "records": []}),
                      indent=1, default=str, allow_nan=False)
    closing = '"records": []\n}'
    assert head.endswith(closing)
    yield head[: -len(closing)] + '"records": ['
    first = True
    encode = json.JSONEncoder(default=str, allow_nan=False).encode
    for record in records:
        yield ("\n  " if first else ",\n  ") + _encode_record(encode, record)
        first = False
    yield "]\n}" if first else "\n ]\n}"


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _encode_record(encode: Callable[[Any], str], record: Mapping[str, Any]) -> str:
    """``encode(_json_safe_record(record))``. A record of plain values under text keys (what the
    layers' records are) is written as it is, unless the strict encoder refuses a NaN or an
    infinity in it; anything else (nested values, other keys) is made safe first."""
    if type(record) is dict and _PLAIN.issuperset(map(type, record.values())) and {str}.issuperset(map(type, record)):
        try:
            return encode(record)
        except ValueError:  # a NaN or an infinity
            pass
    return encode(_json_safe_record(record))


def _json_safe_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`_json_safe` of a record, quicker for its many plain values."""
    safe = {}
    for key, value in record.items():
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            safe[str(key)] = value
        else:
            safe[str(key)] = _json_safe(value)
    return safe


class Report:
    """What the report files and the console show, built once from the records.

    ``pictures`` are the PNG figures by report path (the overview first). Given ``drawing`` instead
    (a function that waits for figures still being drawn elsewhere), they are asked for the first
    time ``pictures`` is read, so the other report files can be written meanwhile; ``close`` stops
    a drawing whose figures were never asked for.
    """

    def __init__(self, summary: pd.DataFrame, groups: list[FailureGroup], skips: list[dict[str, Any]],
                 pictures: dict[str, bytes] | None = None, *, drawing: Callable[[], dict[str, bytes]] | None = None,
                 cancel: Callable[[], None] | None = None) -> None:
        self.summary, self.groups, self.skips = summary, groups, skips
        self._pictures = pictures if pictures is not None or drawing is not None else {}
        self._drawing, self._cancel = drawing, cancel

    @property
    def pictures(self) -> dict[str, bytes]:
        if self._pictures is None:
            assert self._drawing is not None
            self._pictures = self._drawing()
        return self._pictures

    def close(self) -> None:
        """Stop the drawing if its figures were never asked for (a report file failed first)."""
        if self._pictures is None and self._cancel is not None:
            self._cancel()
            self._pictures = {}


def build_report(records: Sequence[Mapping[str, Any]] | RecordSource, meta: Mapping[str, Any],
                 not_implemented: Iterable[str] = (), plots: bool = True,
                 figures_cache: str | Path | None = None) -> Report:
    """The summary, failure groups, skip reasons and plots, reading ``records`` one layer at a time.

    ``figures_cache``: a folder of figures drawn before, reused when what they show is the same."""
    source = as_source(records)
    rows = []
    drawer = FigureDrawer(Path(figures_cache) if figures_cache is not None else None)
    keyed = figures_cache is not None
    grouping, skipped = FailureGrouping(meta.get("options") or {}), SkipCounting()

    def counted(layer: str, cases: Iterable[list[Mapping[str, Any]]]) -> Iterator[list[Mapping[str, Any]]]:
        for case_records in cases:  # the failure groups and skip reasons from the same walk
            grouping.add(layer, case_records)
            skipped.add(case_records)
            yield case_records

    for layer, cases in source.layer_cases():
        cases = counted(layer, cases)
        if not plots:  # one case at a time: memory does not grow with the layer
            rows.append(layer_summary_row(layer, cases))
            continue
        case_records = list(cases)
        rows.append(layer_summary_row(layer, case_records))
        layer_records = [record for each in case_records for record in each]
        data = _heatmap_key(layer_records) if keyed else ""
        # The frame is built only when the figure has to be drawn.
        drawer.draw_lazily(f"{PLOTS}/{layer}.png", layer, data, heatmap_figure,
                           lambda layer=layer, records=layer_records: (layer, cases_frame(records)))
    summary = summary_frame(pd.DataFrame(), list(not_implemented), rows=rows)
    drawing = None
    if plots:
        overview = f"{PLOTS}/overview.png"
        drawer.draw(overview, "\0overview", summary.to_csv(index=False) if keyed else "", overview_figure, summary)

        def drawing() -> dict[str, bytes]:
            drawn = drawer.results()
            return {name: drawn[name] for name in [overview, *drawn] if name in drawn}

    return Report(summary, grouping.groups(), skipped.reasons(), drawing=drawing, cancel=drawer.close)


_NOT_IN_FIGURES = ("duration_s", *NOT_IN_CSV)


def _heatmap_key(records: Sequence[Mapping[str, Any]]) -> str:
    """A heatmap's cache key: its records as text, without the time taken and the captured output."""
    return "\n".join(repr([item for item in record.items() if item[0] not in _NOT_IN_FIGURES]) for record in records)


def write_reports(out_dir: Path | str, records: Sequence[Mapping[str, Any]] | RecordSource, meta: Mapping[str, Any],
                  not_implemented: Iterable[str] = (), plots: bool = True, report: Report | None = None
                  ) -> dict[str, Path]:
    """Write cases.csv, summary.md, summary.html, junit.xml, results.json (and the plots) into ``out_dir``.

    ``records``: a list, or a :class:`~refcheck.report.stream.RecordStream`, read layer by layer and
    written piece by piece, so the whole run is never held at once. ``meta`` may hold ``options``
    (impl, cases, seed, quick, timeout: used in the rerun commands) and ``coverage`` rows; ``report``
    the tables already built by :func:`build_report`. Returns the paths by kind; all files are
    renamed into place together.
    """
    out = Path(out_dir)
    source, not_implemented = as_source(records), list(not_implemented)
    try:
        out.mkdir(parents=True, exist_ok=True)
        report = report or build_report(source, meta, not_implemented, plots)
        return _write_report_files(out, source, meta, not_implemented, report)
    finally:
        if report is not None:
            report.close()  # the figures' processes do not outlive a report that failed before asking for them


def _write_report_files(out: Path, source: RecordSource, meta: Mapping[str, Any], not_implemented: list[str],
                        report: Report) -> dict[str, Path]:
    summary, groups, skips = report.summary, report.groups, report.skips
    figures = {g.case: case_figure_path(g.case) for g in groups if (out / case_figure_path(g.case)).is_file()}
    full_meta = {**meta, "not_implemented": not_implemented}
    # The files from the records first: meanwhile the figures are still being drawn elsewhere.
    contents: dict[str, str | bytes | Iterable[str]] = {
        "cases.csv": cases_csv_chunks(source),
        "junit.xml": junit_chunks(source.layer_cases(), str(meta.get("totals", "")) if meta.get("interrupted")
                                  else ""),
        "results.json": _results_json(full_meta, summary, source),
    }

    def with_pictures() -> dict[str, str | bytes | Iterable[str]]:
        pictures = report.pictures
        return {"summary.md": summary_markdown(summary, groups, skips, meta, list(pictures)),
                "summary.html": summary_html(summary, groups, skips, meta, pictures, figures), **pictures}

    return write_atomically(out, contents, then=with_pictures)


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` to $GITHUB_STEP_SUMMARY when it is set (a GitHub Actions job summary)."""
    target = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    # Images are relative to the report folder, which the job summary cannot reach: leave them out.
    text = "\n".join(line for line in markdown.splitlines() if not line.startswith("!["))
    with open(target, "a", encoding="utf-8") as stream:
        stream.write(text.rstrip("\n") + "\n\n")
    return Path(target)


REPORT_FILES = ("cases.csv", "junit.xml", "results.json", "summary.html", "summary.md")


def write_error_reports(out: Path, message: str) -> None:
    """A run that could not check anything (exit 2) leaves no earlier run's reports in ``out`` to be
    read as its own (a grading loop reusing one folder would read the last student's green
    junit.xml): they are replaced by a junit.xml holding the error and a summary.md saying it. The
    folder is made if need be, so the error is where a CI reads the verdict."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    for name in REPORT_FILES:
        (out / name).unlink(missing_ok=True)
    write_atomically(out, {"junit.xml": junit_error(message),
                           "summary.md": f"# refcheck could not run\n\n```\n{message}\n```\n\n"
                                         "No case was checked (exit code 2).\n"})
