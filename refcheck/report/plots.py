"""Figures of a run (matplotlib, PNG bytes): the overview of every layer and tensor, and the
reference / result / difference images of one case (``case_figure``).

Figures are built on matplotlib's object API with the Agg canvas (no pyplot, no display), and
are deterministic for the same records and versions, so the tracked reports stay byte-identical.
"""
from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .tables import DISPLAY_TENSORS, OTHER

__all__ = ["case_figure", "figure_png", "overview_figure"]

_FAIL, _PASS, _TORCH = "#c0392b", "#2e86c1", "#7f8c8d"


def figure_png(figure: Any, dpi: int = 100) -> bytes:
    """A figure as PNG bytes, without a timestamp in the metadata."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def overview_figure(summary: pd.DataFrame) -> bytes | None:
    """Every layer and tensor's worst error relative to its tolerance, on a log scale.

    The tolerance is the line at 1; torch's own error at the case's dtype (same case, same scale)
    is the grey mark; non-numeric failures (an exception, a wrong shape) sit at the right edge,
    named. None when no layer was checked.
    """
    from matplotlib.figure import Figure

    rows = []
    for row in summary.to_dict(orient="records"):
        for tensor in DISPLAY_TENSORS:
            ratio, kind = row.get(f"{tensor}_ratio"), row.get(f"{tensor}_kind")
            if (ratio is None or pd.isna(ratio)) and not (isinstance(kind, str) and kind):
                continue
            name = row.get(f"{OTHER}_tensor") if tensor == OTHER else tensor
            rows.append((f"{row['layer']} · {name}", ratio, row.get(f"{tensor}_torch_ratio"),
                         kind if isinstance(kind, str) else "", bool(row.get(f"{tensor}_failing"))))
    if not rows:
        return None
    # The axis spans the finite ratios; an infinite one (a non-finite error) is drawn at its edge.
    positive = [float(r[i]) for r in rows for i in (1, 2)
                if r[i] is not None and not pd.isna(r[i]) and 0 < float(r[i]) < math.inf]
    low = 10.0 ** math.floor(math.log10(min(positive + [1e-2]))) / 10
    high = 10.0 ** math.ceil(math.log10(max(positive + [10.0]))) * 10
    figure = Figure(figsize=(8.5, 0.26 * len(rows) + 1.4))
    axes = figure.add_subplot()
    ys = np.arange(len(rows))[::-1]
    for y, (label, ratio, torch_ratio, kind, failing) in zip(ys, rows):
        colour = _FAIL if failing else _PASS
        if kind:
            axes.plot([high / 3], [y], marker="X", color=_FAIL, markersize=8)
            axes.text(high / 4, y, kind, ha="right", va="center", fontsize=8, color=_FAIL)
            continue
        value = min(max(float(ratio), low), high)
        axes.hlines(y, low, value, color=colour, linewidth=2, alpha=0.5)
        axes.plot([value], [y], marker="o", color=colour, markersize=5)
        if torch_ratio is not None and not pd.isna(torch_ratio):
            axes.plot([min(max(float(torch_ratio), low), high)], [y], marker="|", color=_TORCH, markersize=10,
                      mew=2)
    axes.axvline(1.0, color=_FAIL, linestyle="--", linewidth=1)
    axes.text(1.05, ys[0] + 0.6, "tolerance", color=_FAIL, fontsize=8, va="bottom")
    axes.set_xscale("log")
    axes.set_xlim(low, high)
    axes.set_ylim(-0.8, len(rows) - 0.2 + 0.6)
    axes.set_yticks(ys, [r[0] for r in rows], fontsize=8)
    for tick, row in zip(axes.get_yticklabels(), rows):
        if row[4]:
            tick.set_color(_FAIL)
            tick.set_fontweight("bold")
    axes.set_xlabel("worst error / tolerance (log scale; left of the dashed line passes; "
                    f"{low:g} or below drawn at {low:g})", fontsize=8)
    axes.grid(axis="x", which="major", alpha=0.3)
    handles = [axes.plot([], [], marker="o", color=_PASS, linestyle="")[0],
               axes.plot([], [], marker="o", color=_FAIL, linestyle="")[0],
               axes.plot([], [], marker="|", color=_TORCH, linestyle="", markersize=10, mew=2)[0]]
    axes.legend(handles, ["passes", "fails", "torch's own error (same case and dtype)"], fontsize=8, ncol=3,
                loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    axes.set_title("worst error of each layer and tensor, relative to its tolerance", fontsize=10, pad=22)
    figure.tight_layout()
    return figure_png(figure)


def _mosaic(array: np.ndarray, index: tuple[int, ...] | None, limit: int = 16) -> tuple[np.ndarray, str]:
    """An array as one image over its last two (spatial) axes; leading axes become tiles.

    Up to ``limit`` tiles are shown, starting with the one that holds ``index`` (the worst element).
    """
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 0:
        return array.reshape(1, 1), "scalar"
    if array.ndim == 1:
        return array.reshape(1, -1), f"{array.shape[0]} values"
    height, width = array.shape[-2:]
    leading = array.shape[:-2]
    tiles = array.reshape((-1, height, width))
    first = 0
    if index is not None and len(index) == array.ndim and leading:
        first = int(np.ravel_multi_index(index[:-2], leading))
    count = min(limit, tiles.shape[0] - first) if tiles.shape[0] > limit else tiles.shape[0]
    start = first if tiles.shape[0] > limit else 0
    chosen = tiles[start:start + count]
    columns = int(math.ceil(math.sqrt(count)))
    rows = int(math.ceil(count / columns))
    image = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan)
    for k, tile in enumerate(chosen):
        r, c = divmod(k, columns)
        image[r * (height + 1):r * (height + 1) + height, c * (width + 1):c * (width + 1) + width] = tile
    what = f"{count} of {tiles.shape[0]} slices {height}x{width} (leading axes {leading})"
    return image, what


def _displayable(image: np.ndarray) -> tuple[np.ndarray, str]:
    """The image with non-finite values left blank and, when its values are beyond what a colour
    bar can tick (near float64's maximum or minimum), divided by its largest magnitude (named in
    the title)."""
    image = np.where(np.isfinite(image), image, np.nan)
    finite = np.abs(image[np.isfinite(image)])
    largest = float(finite.max()) if finite.size else 0.0
    if largest == 0.0 or 1e-100 <= largest <= 1e100:
        return image, ""
    return image / largest, f" (in units of {largest:.3g})"


def case_figure(case_id: str, results: Mapping[str, Any], reference: Mapping[str, Any],
                tensors: list[str], worst_index: Mapping[str, tuple[int, ...] | None] | None = None) -> bytes:
    """Reference, result and difference of each tensor in ``tensors`` as images over the spatial axes.

    A border-only error (a missing kernel flip), every other row (a stride) or one channel group
    shows as a pattern in the difference column. Leading axes (batch, channel) become tiles.
    """
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    tensors = [t for t in tensors if reference.get(t) is not None] or ["output"]
    figure = Figure(figsize=(11, 3.3 * len(tensors) + 0.6))
    figure.suptitle(case_id, fontsize=10)
    for row, tensor in enumerate(tensors):
        ref = reference.get(tensor)
        got = results.get(tensor)
        index = (worst_index or {}).get(tensor)
        ref_image, what = _mosaic(ref, index) if ref is not None else (np.zeros((1, 1)), "absent")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a complex result is drawn by its real part; its dtype failed it
                got_array = None if got is None else np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            got_array = None
        same_shape = got_array is not None and ref is not None and got_array.shape == np.shape(ref)
        got_image = (np.full((1, 1), np.nan) if got_array is None
                     else _mosaic(got_array, index if same_shape else None)[0])
        panels = [("reference (torch, float64)", ref_image, None), ("result", got_image, None)]
        if same_shape:
            with np.errstate(over="ignore", invalid="ignore"):  # near float64's maximum the difference overflows
                difference = got_array - np.asarray(ref, dtype=np.float64)
            panels.append(("result − reference", _mosaic(difference, index)[0], "diff"))
        else:
            what_came = f"result {type(got).__name__}" if got_array is None else f"shape {got_array.shape}"
            panels.append((f"no difference: {what_came} vs {np.shape(ref)}", np.full((1, 1), np.nan), None))
        for column, (title, image, kind) in enumerate(panels):
            axes = figure.add_subplot(len(tensors), 3, row * 3 + column + 1)
            image, scale = _displayable(image)
            title += scale
            finite = image[np.isfinite(image)]
            if kind == "diff":
                bound = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
                shown = axes.imshow(image, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -bound, bound),
                                    interpolation="nearest")
            else:
                shown = axes.imshow(image, cmap="viridis", interpolation="nearest")
            figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04)
            axes.set_title(f"{tensor}: {title}", fontsize=8)
            axes.set_xticks([])
            axes.set_yticks([])
            if column == 0:
                axes.set_ylabel(what, fontsize=7)
    figure.tight_layout()
    return figure_png(figure)
