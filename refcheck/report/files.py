"""The report files, written from the result records: cases.csv, summary.md, summary.html,
junit.xml, results.json and the plots (plots/overview.png, plots/<layer>.png).

Every file is written to a temporary name first and renamed into place only when all of them
are ready, so an interrupted or failed run never leaves a half-written report. summary.md and the
plots hold no times or paths (they are tracked and byte-identical run to run); results.json holds
everything, times included, and is enough to render the rest again (``load_results``).
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .groups import failure_groups, skip_reasons
from .heatmaps import heatmap_figure
from .html import summary_html
from .junit import junit_xml
from .markdown import summary_markdown
from .plots import overview_figure
from .tables import cases_frame, summary_frame

__all__ = ["append_step_summary", "case_figure_path", "file_mode", "load_results", "write_atomically", "write_reports"]


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


def write_atomically(out: Path, contents: Mapping[str, str | bytes]) -> dict[str, Path]:
    """Write every file under ``out`` to a temporary name, then rename them all into place."""
    staged: dict[str, str] = {}
    try:
        for name, data in contents.items():
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            with os.fdopen(handle, "wb") as stream:
                stream.write(data.encode("utf-8") if isinstance(data, str) else data)
            os.chmod(temporary, file_mode())  # mkstemp's files are private; a report follows the umask
            staged[name] = temporary
        for name, temporary in staged.items():
            os.replace(temporary, out / name)
    finally:
        for temporary in staged.values():
            if os.path.exists(temporary):
                os.unlink(temporary)
    return {name: out / name for name in contents}


def _plots(frame: Any, summary: Any) -> dict[str, bytes]:
    plots: dict[str, bytes] = {}
    overview = overview_figure(summary)
    if overview is not None:
        plots[f"{PLOTS}/overview.png"] = overview
    for layer in dict.fromkeys(frame["layer"]) if not frame.empty else []:
        png = heatmap_figure(layer, frame[frame["layer"] == layer])
        if png is not None:
            plots[f"{PLOTS}/{layer}.png"] = png
    return plots


def write_reports(out_dir: Path | str, records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                  not_implemented: Iterable[str] = (), plots: bool = True) -> dict[str, Path]:
    """Write cases.csv, summary.md, summary.html, junit.xml, results.json (and the plots) into ``out_dir``.

    ``meta`` may hold ``options`` (impl, cases, seed, quick, timeout: used in the rerun commands)
    and ``coverage`` rows. Returns the paths by kind; all files are renamed into place together.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    not_implemented = list(not_implemented)
    frame = cases_frame(records)
    summary = summary_frame(frame, not_implemented)
    groups = failure_groups(records, meta.get("options") or {})
    skips = skip_reasons(records)
    pictures = _plots(frame, summary) if plots else {}
    figures = {g.case: case_figure_path(g.case) for g in groups if (out / case_figure_path(g.case)).is_file()}
    full_meta = {**meta, "not_implemented": not_implemented}
    payload = _json_safe({**full_meta, "summary": summary.to_dict(orient="records"), "records": list(records)})
    contents: dict[str, str | bytes] = {
        "cases.csv": frame.to_csv(index=False),
        "summary.md": summary_markdown(summary, groups, skips, meta, list(pictures)),
        "summary.html": summary_html(summary, groups, skips, meta, pictures, figures),
        "junit.xml": junit_xml(records),
        "results.json": json.dumps(payload, indent=1, default=str, allow_nan=False),
        **pictures,
    }
    return write_atomically(out, contents)


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
