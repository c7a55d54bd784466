"""Write the convention explorer as convention.md, convention.html and PNG figures.

Figures use matplotlib's object API on an Agg canvas (no pyplot, no global backend switch).
Every file is written to a temporary name in the target folder and then renamed, so a reader
never sees a half-written report.
"""
from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..report.files import file_mode
from .classify import ConventionReport
from .explorer import Convention, build_convention
from .identities import HOLDS_TOLERANCE
from .worked_example import GradientEntry, WorkedExample

__all__ = ["EXAMPLE_FIGURE", "GRADIENT_FIGURE", "write_convention_report"]

EXAMPLE_FIGURE = "convention_example.png"
GRADIENT_FIGURE = "convention_input_gradient.png"
CHECK, CROSS = "✓", "✗"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file next to ``path``, then rename over it."""
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(data)
        os.chmod(handle.name, file_mode())  # temporary files are private (0600); a report follows the umask
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else (CHECK if ok else CROSS)


def _number(value: float) -> str:
    if not np.isfinite(value):
        return str(value)
    return "0" if value == 0 else f"{value:.3g}"


def _matrix_text(array: np.ndarray) -> list[str]:
    return np.array2string(np.asarray(array), precision=4, suppress_small=True, floatmode="maxprec").splitlines()


def _side_by_side(blocks: dict[str, np.ndarray]) -> str:
    """Matrices next to each other under their titles, as plain text."""
    columns = [[title, *_matrix_text(array)] for title, array in blocks.items()]
    widths = [max(len(line) for line in column) for column in columns]
    height = max(len(column) for column in columns)
    lines = []
    for row in range(height):
        cells = [(column[row] if row < len(column) else "").ljust(width) for column, width in zip(columns, widths)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- figures

def _heatmap(axes, array: np.ndarray, title: str, labels: np.ndarray | None = None, name: str = "") -> None:
    """Annotated heatmap with 1-based row/column ticks; ``labels`` overrides the cell text."""
    limit = max(1.0, float(np.max(np.abs(array))))
    axes.imshow(array, cmap="coolwarm", vmin=-limit, vmax=limit)
    rows, cols = array.shape
    for i in range(rows):
        for j in range(cols):
            text = labels[i, j] if labels is not None else f"{array[i, j]:g}"
            axes.text(j, i, text, ha="center", va="center", fontsize=9 if labels is not None else 13)
    axes.set_xticks(range(cols), [str(j + 1) for j in range(cols)])
    axes.set_yticks(range(rows), [str(i + 1) for i in range(rows)])
    axes.set_title(title, fontsize=11)
    if name:
        axes.set_xlabel(f"{name} column")
        axes.set_ylabel(f"{name} row")


def _png(figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def example_figure(example: WorkedExample) -> bytes:
    """X, F, rot180 F over the three 2x2 outputs, as annotated heatmaps (PNG bytes)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 7.4), layout="constrained")
    grid = figure.subplots(2, 3)
    _heatmap(grid[0, 0], example.x, "input X (3×3)", name="X")
    _heatmap(grid[0, 1], example.kernel, "filter F (2×2)", name="F")
    _heatmap(grid[0, 2], example.rotated_kernel, "rot180 F", name="F")
    same = _mark(example.torch_is_correlation)
    _heatmap(grid[1, 0], example.cross_correlation, "cross-correlation X ⋆ F\nO[i,j] = Σ X[i+p, j+q]·F[p,q]",
             name="O")
    _heatmap(grid[1, 1], example.true_convolution, "true convolution X ∗ F = X ⋆ rot180 F", name="O")
    _heatmap(grid[1, 2], example.torch_conv2d, f"torch conv2d(X, F)\n= cross-correlation {same}", name="O")
    figure.suptitle("torch.nn.functional.conv2d slides the filter without flipping it", fontsize=13)
    return _png(figure)


def gradient_figure(example: WorkedExample) -> bytes:
    """dO, F and dX with every dX entry written out (PNG bytes)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 5.2), layout="constrained")
    grid = figure.subplots(1, 3, width_ratios=[1, 1, 2.2])
    _heatmap(grid[0], example.grad_output, "upstream gradient dO", name="dO")
    _heatmap(grid[1], example.kernel, "filter F", name="F")
    labels = np.empty(example.grad_input.shape, dtype=object)
    for entry in example.grad_input_entries:
        row, col = int(entry.name[2]) - 1, int(entry.name[3]) - 1
        terms = "\n+ ".join(f"{factor} {grad}" for factor, _, grad, _ in entry.terms)
        labels[row, col] = f"{entry.value:g}\n{terms}"
    _heatmap(grid[2], example.grad_input, "dX = full convolution of dO with F (autograd values)", labels, name="X")
    figure.suptitle("input gradient: each dX entry sums F·dO over the outputs whose window covers it", fontsize=13)
    return _png(figure)


# ----------------------------------------------------------------------------------------- tables

def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)

    def cell(text: str) -> str:
        css = ' class="ok"' if text == CHECK else ' class="bad"' if text == CROSS else ""
        return f"<td{css}>{html.escape(text)}</td>"

    body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


Section = tuple[str, list[tuple[str, object]]]


def _sections(convention: Convention, impl_report: ConventionReport | None) -> list[Section]:
    """The report as (heading, [(kind, content), ...]); kind is text, pre, table or figure."""
    example, rows = convention.worked_example, convention.identities
    by_name = {row.identity: row for row in rows}
    facts = [
        ("torch's conv2d is a cross-correlation (no kernel flip)", by_name["conv2d is a cross-correlation"].holds
         and not by_name["wrong: conv2d is a true convolution"].holds),
        ("a true convolution is a cross-correlation with the kernel rotated by 180°",
         by_name["convolution = correlation with the kernel rotated"].holds),
        ("the weight gradient is a cross-correlation of the input with dY",
         by_name["dW is a cross-correlation of x with dY"].holds),
        ("the input gradient is a full convolution of the (stride-dilated) dY with the kernel, "
         "i.e. a cross-correlation of the zero-padded dY with rot180 of the kernel",
         by_name["dX is a full convolution of the dilated dY with the kernel"].holds
         and by_name["dX is a correlation of the padded dilated dY with rot180 W"].holds),
    ]
    intro = [("text", f"Computed at run time with torch {convention.torch_version} and numpy "
                      f"{convention.numpy_version}, in float64. ⋆ is cross-correlation, ∗ is convolution.")]
    intro.append(("table", (["finding", "verified"], [[text, _mark(ok)] for text, ok in facts])))

    outputs = [[f"O{i + 1}{j + 1}", _number(example.cross_correlation[i, j]), _number(example.true_convolution[i, j]),
                _number(example.torch_conv2d[i, j])] for i in range(2) for j in range(2)]

    def entry_rows(entries: tuple[GradientEntry, ...]) -> list[list[str]]:
        return [[e.equation, e.numeric, _number(e.autograd), _mark(e.matches_autograd)] for e in entries]

    worked = [
        ("pre", _side_by_side({"X": example.x, "F": example.kernel, "rot180 F": example.rotated_kernel,
                               "dO": example.grad_output})),
        ("table", (["output", "X ⋆ F (cross-correlation)", "X ∗ F (true convolution)", "torch conv2d"], outputs)),
        ("text", f"torch conv2d equals the cross-correlation: {_mark(example.torch_is_correlation)}; "
                 f"equals the true convolution: {_mark(example.torch_is_convolution)}."),
        ("figure", EXAMPLE_FIGURE),
        ("text", "Input gradient, derived by listing the outputs whose window covers each input position "
                 "(the loss is Σ O·dO, dO as above):"),
        ("table", (["entry", "with numbers", "autograd", "equal"], entry_rows(example.grad_input_entries))),
        ("figure", GRADIENT_FIGURE),
        ("text", "Weight gradient (a cross-correlation of X with dO):"),
        ("table", (["entry", "with numbers", "autograd", "equal"], entry_rows(example.grad_kernel_entries))),
    ]

    identity = [
        ("text", f"Case: {convention.identity_case.describe()}. Ground truth: torch.autograd. "
                 f"“holds” means max abs error ≤ {HOLDS_TOLERANCE:g}; "
                 "rows marked wrong are expected not to hold."),
        ("table", (["identity", "formula", "max abs error", "holds", "as expected"],
                   [[row.identity, row.formula + (f" ({row.note})" if row.note else ""), _number(row.max_abs_error),
                     _mark(row.holds), _mark(row.as_expected)] for row in rows])),
    ]

    pooling: list[tuple[str, object]] = [
        ("table", (["rule", "setting", "max abs error vs torch", "holds"],
                   [[d.rule, d.setting, _number(d.max_abs_error), _mark(d.holds)] for d in convention.pooling])),
    ]
    for demo in convention.pooling:
        blocks = {"x": demo.x, "dY": demo.grad_output, "output": demo.output, "dX (rule)": demo.grad_input,
                  "dX (autograd)": demo.torch_grad_input}
        blocks.update(demo.details)
        pooling.append(("text", f"{demo.rule}, {demo.setting}: " + "; ".join(demo.notes)))
        pooling.append(("pre", _side_by_side(blocks)))

    sections = [("Convolution vs cross-correlation in torch", intro),
                ("Worked example: 3×3 input, 2×2 filter", worked),
                ("Identity table", identity),
                ("Pooling gradient rules", pooling)]
    if impl_report is not None:
        report_rows = [[str(r.quantity), str(r.candidate), _number(float(r.max_abs_error)), _mark(bool(r.matches))]
                       for r in impl_report.table().itertuples()]
        impl = [("pre", impl_report.summary()),
                ("text", "Cases: " + "; ".join(impl_report.cases)),
                ("table", (["quantity", "candidate", "max abs error", "matches"], report_rows))]
        sections.append((f"Your implementation: {impl_report.origin or 'conv2d'}", impl))
    return sections


def _markdown(sections: list[Section]) -> str:
    parts = []
    for level, (heading, items) in enumerate(sections):
        parts.append(("# " if level == 0 else "## ") + heading)
        for kind, content in items:
            if kind == "text":
                parts.append(str(content))
            elif kind == "pre":
                parts.append(f"```\n{content}\n```")
            elif kind == "table":
                parts.append(_md_table(*content))  # type: ignore[misc]
            elif kind == "figure":
                parts.append(f"![{content}]({content})")
    return "\n\n".join(parts) + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 75rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.ok { color: #1a7f37; font-weight: bold; text-align: center; }
td.bad { color: #c62828; font-weight: bold; text-align: center; }
pre { background: #f7f7f7; padding: 0.6rem; overflow-x: auto; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def _html(sections: list[Section], figures: dict[str, bytes]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(sections[0][0])}</title><style>{_STYLE}</style></head><body>"]
    for level, (heading, items) in enumerate(sections):
        tag = "h1" if level == 0 else "h2"
        parts.append(f"<{tag}>{html.escape(heading)}</{tag}>")
        for kind, content in items:
            if kind == "text":
                parts.append(f"<p>{html.escape(str(content))}</p>")
            elif kind == "pre":
                parts.append(f"<pre>{html.escape(str(content))}</pre>")
            elif kind == "table":
                parts.append(_html_table(*content))  # type: ignore[misc]
            elif kind == "figure":
                encoded = base64.b64encode(figures[str(content)]).decode("ascii")
                parts.append(f'<p><a href="{html.escape(str(content))}"><img alt="{html.escape(str(content))}" '
                             f'src="data:image/png;base64,{encoded}"></a></p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_convention_report(out_dir: str | os.PathLike[str], impl_report: ConventionReport | None = None, *,
                            convention: Convention | None = None) -> list[Path]:
    """Write convention.md, convention.html (figures embedded) and the PNG figures into ``out_dir``.

    Parameters
    ----------
    out_dir : folder, created if missing.
    impl_report : a ``classify_conv2d`` result to append as a section, or None.
    convention : precomputed ``build_convention()`` result (computed here when None).

    Returns
    -------
    The written paths: the two PNG figures, convention.md, convention.html.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    convention = convention or build_convention()
    figures = {EXAMPLE_FIGURE: example_figure(convention.worked_example),
               GRADIENT_FIGURE: gradient_figure(convention.worked_example)}
    sections = _sections(convention, impl_report)
    written = []
    for name, data in figures.items():
        _write_atomic(out / name, data)
        written.append(out / name)
    for name, text in (("convention.md", _markdown(sections)), ("convention.html", _html(sections, figures))):
        _write_atomic(out / name, text.encode("utf-8"))
        written.append(out / name)
    return written
