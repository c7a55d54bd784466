"""The network report: ``network.csv`` (one row per model, dtype, step and tensor), ``network.md``
(one row per model and dtype, where each run first goes wrong, the loss curves), ``network.json``
(the rows and what the reader needs to reproduce the run) and one loss-curve figure per model,
``network_<model>_loss.png`` (the user's loss, step by step, beside torch's, with the largest gap).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..report.files import write_atomically
from ..report.plots import figure_png
from .check import ModelRun

__all__ = ["COLUMNS", "curve_figure", "network_frame", "summary_markdown", "write_network_reports"]

COLUMNS = ["model", "dtype", "step", "tensor", "layer", "status", "reason", "max_abs_error", "max_rel_error",
           "error_eps", "torch_error_eps", "tolerance_eps", "mismatched", "total", "implementation", "update_rule"]


def network_frame(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """Every run's rows, in a fixed column order."""
    rows = [record for run in runs for record in run.records]
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def _gap(run: ModelRun) -> str:
    gap = run.largest_gap
    return "" if gap is None else f"{gap[1]:.3g} (step {gap[0]})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(runs: Sequence[ModelRun], meta: Mapping[str, Any]) -> str:
    """One row per model and dtype, then the loss curves."""
    lines = [f"# refcheck network: {meta.get('implementation', '')}", "",
             "| model | dtype | status | checked as | update | largest loss gap | first disagreement |",
             "|:--|:--|:--|:--|:--|--:|:--|"]
    for run in runs:
        lines.append(f"| {run.model.name} | {run.dtype} | {run.status} | {run.style} | {_cell(run.update_rule)} | "
                     f"{_gap(run)} | {_cell(run.located)} |")
    for name in dict.fromkeys(run.model.name for run in runs):
        model_runs = [run for run in runs if run.model.name == name]
        model = model_runs[0].model
        lines += ["", f"## {name}", "", model.description, "",
                  f"Update: {model.update}. Steps: {model.steps}. Figure: `network_{name}_loss.png`.", "",
                  "| step | " + " | ".join(f"yours {r.dtype} | torch {r.dtype}" for r in model_runs) + " |",
                  "|--:|" + "--:|--:|" * len(model_runs)]
        for step in range(model.steps):
            cells = []
            for run in model_runs:
                cells += [_number(run.user_losses, step), _number(run.torch_losses, step)]
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
        for run in model_runs:
            lines += [f"- {run.dtype}: {note}" for note in run.notes]
    return "\n".join(lines) + "\n"


def _number(values: Sequence[float], index: int) -> str:
    return f"{values[index]:.9g}" if index < len(values) and math.isfinite(values[index]) else "-"


def curve_figure(model_runs: Sequence[ModelRun]) -> bytes:
    """The user's loss curve at each dtype beside torch's float64 one (top), and the gap between
    them step by step on a log scale, with the largest marked (bottom)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 5.2))
    curves, gaps = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    model = model_runs[0].model
    reference = next((run.reference_losses for run in model_runs if run.reference_losses), [])
    curves.plot(range(len(reference)), reference, color="#7f8c8d", linewidth=5, alpha=0.45, label="torch (float64)")
    for run, marker, colour in zip(model_runs, ("o", "x", "s"), ("#2e86c1", "#c0392b", "#27ae60")):
        steps = range(len(run.user_losses))
        curves.plot(steps, run.user_losses, marker=marker, color=colour, linewidth=1,
                    label=f"yours ({run.dtype}, {run.status})")
        if run.torch_losses and run.dtype != "float64":
            curves.plot(range(len(run.torch_losses)), run.torch_losses, linestyle=":", color=colour, linewidth=1,
                        label=f"torch ({run.dtype})")
        differences = [abs(u - r) if math.isfinite(u - r) else math.nan
                       for u, r in zip(run.user_losses, run.reference_losses)]
        shown = [max(d, 1e-18) if math.isfinite(d) else math.nan for d in differences]
        gaps.semilogy(range(len(shown)), shown, marker=marker, color=colour, linewidth=1, label=run.dtype)
        if run.torch_losses and run.dtype != "float64":
            own = [max(abs(t - r), 1e-18) for t, r in zip(run.torch_losses, run.reference_losses)]
            gaps.semilogy(range(len(own)), own, linestyle=":", color=colour, linewidth=1,
                          label=f"torch {run.dtype} (its own error)")
        gap = run.largest_gap
        if gap is not None and math.isfinite(gap[1]):
            gaps.annotate(f"largest {gap[1]:.2g}", (gap[0], max(gap[1], 1e-18)), textcoords="offset points",
                          xytext=(6, 4), fontsize=8, color=colour)
    curves.set_ylabel("loss")
    curves.set_title(f"{model.name}: {model.description}", fontsize=8)
    curves.legend(fontsize=7)
    curves.grid(alpha=0.3)
    gaps.set_ylabel("|yours - torch float64|")
    gaps.set_xlabel("training step")
    gaps.set_xticks(range(model.steps))
    gaps.margins(y=0.25)
    gaps.legend(fontsize=7)
    gaps.grid(alpha=0.3)
    figure.tight_layout()
    return figure_png(figure)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_network_reports(out: Path | str, runs: Sequence[ModelRun], meta: Mapping[str, Any],
                          plots: bool = True) -> dict[str, Path]:
    """Write the report files into ``out`` (atomically); returns name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = network_frame(runs)
    payload = {**meta, "runs": [{"model": r.model.name, "dtype": r.dtype, "status": r.status, "style": r.style,
                                 "located": r.located, "implementation": r.implementation,
                                 "update_rule": r.update_rule, "user_losses": r.user_losses,
                                 "torch_losses": r.torch_losses, "reference_losses": r.reference_losses,
                                 "notes": r.notes, "stdout": r.stdout, "stderr": r.stderr,
                                 "traceback": r.traceback} for r in runs],
               "records": frame.astype(object).where(frame.notna(), None).to_dict(orient="records")}
    contents: dict[str, str | bytes] = {
        "network.csv": frame.to_csv(index=False, float_format="%.6g"),
        "network.md": summary_markdown(runs, meta),
        "network.json": json.dumps(_json_safe(payload), indent=1, default=str) + "\n",
    }
    if plots:
        for name in dict.fromkeys(run.model.name for run in runs):
            model_runs = [run for run in runs if run.model.name == name]
            if any(run.user_losses for run in model_runs):
                contents[f"network_{name}_loss.png"] = curve_figure(model_runs)
    return write_atomically(out, contents)
