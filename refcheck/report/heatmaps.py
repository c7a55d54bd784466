"""Per layer, where in the parameter space the errors are: heatmaps of the worst error relative to
the tolerance over the layer's two most telling parameters, failing cells marked with a sign.
"""
from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np
import pandas as pd

from ..specs import LAYERS
from .plots import figure_png
from .ranking import error_ratio

__all__ = ["PARAMETER_PAIRS", "heatmap_figure", "heatmap_pairs"]

# The pairs that show the usual mistakes; other layers get their two most varied parameters.
PARAMETER_PAIRS: dict[str, list[tuple[str, str]]] = {
    "conv2d": [("stride", "padding"), ("kernel_size", "dilation")],
    "max_pool2d": [("kernel_size", "stride")],
    "avg_pool2d": [("kernel_size", "stride")],
    "lp_pool2d": [("kernel_size", "stride")],
}
_FALLBACK = ("values", "dtype", "input_shape")
FAIL_SIGN = "×"
ERROR_SIGN = "■"


def _parsed(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def label(value: Any) -> str:
    """A parameter value as in case ids: (2, 2) -> '2', (2, 1) -> '2x1', 'same' -> same; shapes 2x3x8."""
    value = _parsed(value)
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == value[1]:
            return str(value[0])
        return "x".join(str(v) for v in value) if len(value) != 1 else f"({value[0]},)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _order(value: Any) -> tuple[int, Any]:
    value = _parsed(value)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (0, (float(value), float(value)))
    if isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
        return (0, tuple(float(v) for v in value))
    return (2, str(value))


def heatmap_pairs(layer: str, rows: pd.DataFrame) -> list[tuple[str, str]]:
    """The parameter pairs to draw for a layer: the preset ones, else the two most varied columns."""
    def varied(column: str) -> int:
        return rows[column].dropna().astype(str).nunique() if column in rows.columns else 0

    preset = [pair for pair in PARAMETER_PAIRS.get(layer, []) if min(varied(pair[0]), varied(pair[1])) > 0
              and max(varied(pair[0]), varied(pair[1])) > 1]
    if preset:
        return preset
    names = list(LAYERS[layer].hyper_names) if layer in LAYERS else []
    candidates = sorted((c for c in [*names, *_FALLBACK] if varied(c) > 1), key=lambda c: -varied(c))
    if len(candidates) >= 2:
        return [(candidates[0], candidates[1])]
    if candidates:
        return [(candidates[0], next(c for c in ("dtype", "values") if c != candidates[0]))]
    return []


def _with_kernel_size(rows: pd.DataFrame) -> pd.DataFrame:
    """conv2d's kernel size is the weight's last two dimensions: a column of its own for the heatmap."""
    if "weight_shape" not in rows.columns or ("kernel_size" in rows.columns and rows["kernel_size"].notna().any()):
        return rows

    def kernel(shape: Any) -> Any:
        parsed = _parsed(shape)
        return repr(tuple(parsed[-2:])) if isinstance(parsed, tuple) and len(parsed) == 4 else None

    return rows.assign(kernel_size=rows["weight_shape"].map(kernel))


def _grid(rows: pd.DataFrame, x: str, y: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Worst ratio per (y, x) cell, and the cell's mark: 0 passes, 1 failed, 2 error, -1 no case."""
    xs = sorted(dict.fromkeys(rows[x].dropna()), key=_order)
    ys = sorted(dict.fromkeys(rows[y].dropna()), key=_order)
    values = np.full((len(ys), len(xs)), np.nan)
    marks = np.full((len(ys), len(xs)), -1)
    x_index = {v: i for i, v in enumerate(xs)}
    y_index = {v: i for i, v in enumerate(ys)}
    columns = [c for c in dict.fromkeys([x, y, "status", "error_eps", "tolerance_eps"]) if c in rows.columns]
    for record in rows[columns].to_dict(orient="records"):  # only what a cell needs: wide rows are slow to walk
        if record.get("status") == "skipped" or pd.isna(record.get(x)) or pd.isna(record.get(y)):
            continue
        i, j = y_index[record[y]], x_index[record[x]]
        ratio = error_ratio(record)
        if not math.isnan(ratio):
            values[i, j] = ratio if math.isnan(values[i, j]) else max(values[i, j], ratio)
        mark = {"error": 2, "failed": 1}.get(str(record.get("status")), 0)
        marks[i, j] = max(marks[i, j], mark)
    return [label(v) for v in xs], [label(v) for v in ys], values, marks


# Layout in inches, computed rather than measured (matplotlib's tight layout draws every figure
# twice, and a sweep has a heatmap per layer). Tick labels are 8 pt: about 0.07 in per character.
_CHAR = 0.07
_CELL_W, _CELL_H = 0.55, 0.42
_TOP, _BOTTOM, _GAP, _COLORBAR = 0.75, 0.6, 0.35, 0.75


def _panel_size(xs: list[str], ys: list[str]) -> tuple[float, float, float]:
    """(left margin, width, height) in inches of one heatmap panel: y label and ticks, then the cells."""
    left = 0.4 + _CHAR * max(len(y) for y in ys)
    width = max(1.8, _CELL_W * len(xs), 0.5 + _CHAR * 0.9 * sum(len(x) + 1 for x in xs))
    return left, width, max(1.0, _CELL_H * len(ys))


def _decades(low: float, high: float) -> list[float]:
    """Colour-bar ticks: the powers of ten from ``low`` to ``high``, at most seven of them."""
    first, last = math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9)
    step = max(1, math.ceil((last - first + 1) / 7))
    return [10.0 ** k for k in range(first, last + 1, step)]


def heatmap_figure(layer: str, rows: pd.DataFrame) -> bytes | None:
    """The layer's heatmaps (one per parameter pair) as one PNG; None when no pair varies."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    rows = _with_kernel_size(rows) if layer == "conv2d" else rows
    pairs = heatmap_pairs(layer, rows)
    if not pairs:
        return None
    grids = [(pair, _grid(rows, *pair)) for pair in pairs]
    sizes = [_panel_size(g[0], g[1]) for _, g in grids]
    width = sum(left + panel + _COLORBAR + _GAP for left, panel, _ in sizes) + 0.1
    panel_height = max(h for _, _, h in sizes)
    height = _TOP + _BOTTOM + panel_height
    figure = Figure(figsize=(width, height))
    ratios = np.concatenate([g[2].ravel() for _, g in grids])
    positive = ratios[np.isfinite(ratios) & (ratios > 0)]
    low = min(float(positive.min()) if positive.size else 1e-2, 1e-2)
    high = max(float(positive.max()) if positive.size else 10.0, 10.0)
    norm = LogNorm(low, high)
    x0 = 0.0
    for ((x, y), (xs, ys, values, marks)), (left, panel, _) in zip(grids, sizes):
        x0 += left
        axes = figure.add_axes((x0 / width, _BOTTOM / height, panel / width, panel_height / height))
        x0 += panel
        colorbar_axes = figure.add_axes(((x0 + 0.12) / width, _BOTTOM / height, 0.12 / width, panel_height / height))
        x0 += _COLORBAR + _GAP
        shown = np.where(np.isfinite(values), np.clip(values, low, high), np.where(marks >= 1, high, np.nan))
        image = axes.imshow(np.ma.masked_invalid(shown), cmap="RdYlGn_r", norm=norm, aspect="auto",
                            interpolation="nearest")
        # Marks as one collection each (a text per cell is the slow part of drawing a large grid).
        for kind, marker, size, colour in ((2, "s", 40, "black"), (1, "x", 70, "black"),
                                           (-1, ".", 8, "#999999")):
            i, j = np.nonzero(marks == kind)
            if i.size:
                axes.scatter(j, i, marker=marker, s=size, c=colour, linewidths=2.5 if kind == 1 else None)
        axes.set_xlim(-0.5, len(xs) - 0.5)
        axes.set_ylim(len(ys) - 0.5, -0.5)
        axes.set_xticks(range(len(xs)), xs, fontsize=8)
        axes.set_yticks(range(len(ys)), ys, fontsize=8)
        axes.set_xlabel(x, fontsize=9)
        axes.set_ylabel(y, fontsize=9)
        colorbar = figure.colorbar(image, cax=colorbar_axes)
        colorbar.set_label("worst error / tolerance", fontsize=7)
        colorbar.minorticks_off()  # a log scale's minor ticks cost more to draw than the rest of the panel
        colorbar.set_ticks(_decades(low, high))
        colorbar.formatter = FuncFormatter(lambda value, _: f"{value:g}")  # plain text: no mathtext to parse
        colorbar.update_ticks()
    figure.suptitle(f"{layer}: worst error / tolerance\n{FAIL_SIGN} fails   {ERROR_SIGN} raised   · no case",
                    fontsize=9, y=1 - 0.08 / height, va="top")
    return figure_png(figure)
