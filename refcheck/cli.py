"""The command line: ``refcheck run``, ``convention``, ``report``, ``diff`` and ``show``.

Exit codes of ``run``: 0 every case passed or was skipped, and something was checked; 1 a case
failed or errored; 2 a usage or case-file error (nothing written); 5 nothing was checked (every
case skipped or not implemented; as pytest's "no tests ran"); 130 interrupted (the finished part
is written).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .specs import RefcheckError, UsageError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_CHECKED, EXIT_INTERRUPTED = 0, 1, 2, 5, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 through our own path (same code, same stream)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        # "argument --timeout: ..." reads better as "--timeout: ...".
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message.removeprefix('argument ')}\n")


def _argparse_type(option):  # type: ignore[no-untyped-def]
    def convert(text: str):  # type: ignore[no-untyped-def]
        try:
            return option.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    convert.__name__ = option.dest
    return convert


def _add_check_options(parser: argparse.ArgumentParser) -> None:
    """The options shared with the pytest plugin (refcheck.execution.options)."""
    from .execution.options import OPTIONS

    for option in OPTIONS:
        if option.parse is None:
            parser.add_argument(f"--{option.name}", action="store_true", help=option.help)
        else:
            parser.add_argument(f"--{option.name}", type=_argparse_type(option), default=option.default,
                                metavar=option.metavar, help=option.help)


def build_parser() -> argparse.ArgumentParser:
    from .specs import LAYERS

    parser = _Parser(prog="refcheck", description="Check numpy layer implementations, forward and backward, "
                                                  "against torch.autograd on generated cases.")
    parser.add_argument("--version", action="version", version=f"refcheck {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="check an implementation over the case sweep and write reports",
                              description="Check every layer of an implementation against torch.autograd "
                                          "over the case sweep; print a per-layer table and write reports "
                                          "(cases.csv, summary.md, summary.html, junit.xml, results.json).",
                              epilog="Exit codes: 0 all passed or skipped (and something was checked), "
                                     "1 any failed or errored, 2 usage or case-file error, 5 nothing was checked, "
                                     "130 interrupted (finished cases reported). "
                                     f"Layers: {', '.join(LAYERS)}.")
    run.add_argument("--impl", metavar="MODULE_OR_PATH", default=None,
                     help="module name or path to a .py file (default: refcheck's built-in layers)")
    run.add_argument("--layers", metavar="A,B", help="only these layers (default: all the implementation has)")
    run.add_argument("--dtype", metavar="D,D", help="only these dtypes: float32, float64 (default: both)")
    run.add_argument("--cases", metavar="DIR", help="folder of case files (default: the built-in cases)")
    run.add_argument("--case", metavar="ID,ID", help="only the cases with these exact ids (to reproduce one)")
    run.add_argument("--out", metavar="DIR", default="reports", help="report folder (default: ./reports)")
    run.add_argument("--seed", type=int, default=0, help="base seed of the generated inputs (default: 0)")
    run.add_argument("--quick", action="store_true", help="only the cases that the coverage needs")
    run.add_argument("--oracle-cache", metavar="DIR", default=None,
                     help="folder of torch's cached results (default: $REFCHECK_CACHE_DIR or ~/.cache/refcheck/oracle)")
    run.add_argument("--no-plots", action="store_true", help="write no plots or case figures (faster)")
    run.add_argument("-v", "--verbose", action="store_true", help="list every failure group, not the first few")
    _add_check_options(run)
    _add_inspect_command(commands)
    _add_report_commands(commands)

    convention = commands.add_parser("convention", help="the convolution vs cross-correlation explorer",
                                     description="Compute and write the convolution vs cross-correlation "
                                                 "explorer (convention.md, convention.html, figures); with "
                                                 "--impl, classify that implementation's conv2d.")
    convention.add_argument("--out", metavar="DIR", default="reports", help="output folder (default: ./reports)")
    convention.add_argument("--impl", metavar="MODULE_OR_PATH", help="classify this implementation's conv2d")
    return parser


def _add_inspect_command(commands: argparse._SubParsersAction) -> None:
    from .execution.options import MAP_HELP

    inspect = commands.add_parser("inspect", help="show which of your functions or classes refcheck checks as "
                                                  "which layer, and how",
                                  description="Load an implementation and show, for each layer, the function or "
                                              "class used, the adapter and layout, the hyperparameters it "
                                              "supports, and what was not used and why; then a starting mapping "
                                              "for what could not be decided.")
    inspect.add_argument("--impl", metavar="MODULE_OR_PATH", required=True,
                         help="module name, path to a .py file, or a package folder")
    inspect.add_argument("--map", metavar="FILE", default=None, help=MAP_HELP)


def _inspect(args: argparse.Namespace) -> int:
    from .adapters.inspect_report import inspect_text
    from .execution.implementation import load_implementation

    implementation = load_implementation(args.impl, args.map)
    print(inspect_text(implementation.name, implementation.layers, implementation.discovery,
                       implementation.mapping_source))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from .execution.options import check_options
    from .report import append_step_summary, case_statuses, cases_frame, write_reports
    from .report.console import make_console, print_coverage, progress_bar
    from .execution.sweep import plan_sweep, run_plan
    from .oracle import default_cache_dir

    console = make_console()
    _check_out_folder(args.out)
    plan = plan_sweep(args.impl, args.layers, args.cases, dtypes=args.dtype, quick=args.quick, seed=args.seed,
                      map_path=args.map, forward_only=args.forward_only)
    if args.case:
        wanted = [c.strip() for c in args.case.split(",") if c.strip()]
        if any(c not in {case.id for case in plan.cases} for c in wanted):
            # An id from the other sweep (quick vs full) names the same configuration: look there too.
            other = plan_sweep(args.impl, args.layers, args.cases, dtypes=args.dtype, quick=not args.quick,
                               seed=args.seed, map_path=args.map, forward_only=args.forward_only)
            known = {case.id for case in plan.cases}
            # Ids name configurations: one outside this implementation's supported space still runs
            # (and says why it is not supported).
            plan.cases += [case for case in other.cases + plan.outside + other.outside if case.id not in known
                           and not known.add(case.id)]
        unknown = [c for c in wanted if c not in {case.id for case in plan.cases}]
        if unknown:
            raise UsageError(f"--case: no case with id {unknown[0]!r} in this sweep (check --layers, --dtype, --quick)")
        plan.cases = [case for case in plan.cases if case.id in wanted]
    if not plan.cases:
        raise UsageError("no cases to run: the implementation has none of the selected layers "
                         f"(it provides: {', '.join(plan.implementation.layers) or 'nothing'})")
    console.print(f"refcheck {__version__}: {len(plan.cases)} cases of {len({c.layer for c in plan.cases})} layers "
                  f"for [bold]{escape(plan.implementation.name)}[/]")
    started = time.perf_counter()
    checking = check_options(vars(args), args.oracle_cache or str(default_cache_dir()))
    with progress_bar(console, len(plan.cases)) as advance:
        result = run_plan(plan, checking, on_case=advance)
    elapsed = time.perf_counter() - started
    statuses = case_statuses(cases_frame(result.records))
    counts = statuses["status"].value_counts()
    # No time in the totals: they land in the tracked summary.md, which must not change run to run.
    totals = (f"{result.finished} of {result.total} cases: "
              + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("passed", "failed", "error", "skipped"))
              + (" (interrupted)" if result.interrupted else ""))
    options = {"impl": args.impl, "cases": args.cases, "seed": args.seed, "quick": args.quick,
               "timeout": args.timeout, "dtype": args.dtype, "map": args.map, "forward_only": args.forward_only,
               "allow_frameworks": args.allow_frameworks}
    meta = {"refcheck_version": __version__, "implementation": plan.implementation.name,
            "command": " ".join(["refcheck", *sys.argv[1:]]), "seed": args.seed, "quick": args.quick,
            "duration_s": elapsed, "interrupted": result.interrupted, "totals": totals, "options": options,
            "coverage": plan.coverage_rows(), "implementations": plan.implementation_rows(),
            "not_supported": plan.unsupported, "forward_only": args.forward_only}
    if not args.no_plots and not result.interrupted:
        _draw_failing_cases(console, args.impl, plan.cases, result.records, options, Path(args.out))
    paths = write_reports(args.out, result.records, meta, plan.not_implemented, plots=not args.no_plots)
    _print_report(console, result.records, meta, plan.not_implemented, args.verbose, print_coverage_rows=False)
    print_coverage(console, plan.coverage_rows())
    for row in plan.implementation_rows():
        console.print(f"{row['layer']}: checked {row['implementation']}", markup=False)
    for layer, line in plan.unsupported.items():
        console.print(f"{layer}: {line}", markup=False)
    console.print(f"{totals} in {elapsed:.1f} s", markup=False)
    console.print(f"reports: {args.out}/ ({', '.join(sorted({p.name if p.parent == Path(args.out) else p.parent.name + '/' for p in paths.values()}))})", markup=False, soft_wrap=True)
    append_step_summary(paths["summary.md"].read_text(encoding="utf-8"))
    if result.interrupted:
        return EXIT_INTERRUPTED
    if counts.get("failed", 0) or counts.get("error", 0):
        return EXIT_FAILED
    if not counts.get("passed", 0):
        console.print(_nothing_checked(statuses), markup=False)
        return EXIT_NOTHING_CHECKED
    return EXIT_OK


def _nothing_checked(statuses) -> str:  # type: ignore[no-untyped-def]
    """Why a run checked nothing: its skip reasons, most frequent first."""
    reasons = statuses["reason"].fillna("").astype(str).str.split(";").str[0].value_counts()
    listed = "; ".join(f"{reason or 'skipped'} ({count} cases)" for reason, count in reasons.head(3).items())
    return (f"nothing was checked: all {len(statuses)} cases were skipped ({listed}); "
            f"exit code {EXIT_NOTHING_CHECKED}")


def _check_out_folder(out: str) -> None:
    """--out must be a folder refcheck can write (or create), checked before any case runs."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out!r} is a file; give a folder for the reports")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--out {out!r} cannot be created: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out!r} cannot be written: no write permission on {existing}")


def _convention(args: argparse.Namespace) -> int:
    from .report.console import make_console
    from .convention import classify_conv2d, key_table, write_convention_report

    console = make_console()
    impl_report = None
    if args.impl:
        from .execution.implementation import load_implementation

        implementation = load_implementation(args.impl)
        functions = implementation.layers.get("conv2d")
        if functions is None:
            raise UsageError(f"--impl {args.impl}: no conv2d found (expected conv2d_forward and conv2d_backward)")
        impl_report = classify_conv2d(functions.forward, functions.backward, accepted=functions.accepted,
                                      origin=functions.origin, constraint=functions.constraint)
    paths = write_convention_report(Path(args.out), impl_report=impl_report)
    # The formula column is in the files; the terminal gets the verdicts.
    table = key_table()[["identity", "max_abs_error", "holds"]]
    console.print(table.to_markdown(index=False), markup=False)
    if impl_report is not None:
        console.print(str(impl_report), markup=False)
    console.print(f"written: {', '.join(str(p) for p in paths)}", markup=False)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``refcheck`` console script and ``python -m refcheck``."""
    args = build_parser().parse_args(argv)
    try:
        commands = {"run": _run, "inspect": _inspect, "convention": _convention, "report": _report, "diff": _diff,
                    "show": _show}
        return commands[args.command](args)
    except RefcheckError as error:
        print(f"refcheck: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("refcheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# --- report, diff, show: re-rendering, comparing runs, drawing one case ---------------------------

FIGURES_PER_RUN = 12


def _add_report_commands(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="re-render a report folder from its results.json",
                                 description="Write summary.md, summary.html, junit.xml, cases.csv and the plots "
                                             "again from DIR/results.json, without rerunning anything.")
    report.add_argument("dir", metavar="DIR", help="a report folder written by refcheck run")
    report.add_argument("--no-plots", action="store_true", help="write no plots")
    report.add_argument("-v", "--verbose", action="store_true", help="list every failure group")

    diff = commands.add_parser("diff", help="compare two report folders",
                               description="Compare two runs' results.json: regressions (passed to failed or "
                                           "errored), fixed cases, errors grown more than tenfold, cases added "
                                           "or removed.",
                               epilog="Exit codes: 0 no regression, 1 a regression, 2 a folder without results.json.")
    diff.add_argument("old", metavar="OLD", help="the earlier report folder")
    diff.add_argument("new", metavar="NEW", help="the later report folder")
    diff.add_argument("--md", action="store_true", help="print the table as Markdown")

    show = commands.add_parser("show", help="draw where in its tensors one case goes wrong",
                               description="Run one case and draw, for each failing tensor, the reference, the "
                                           "implementation's result and their difference over the spatial axes.")
    show.add_argument("case", metavar="CASE_ID", help="a case id, e.g. 'conv2d[s2-p1-d1-g1-k3x3-2x4x9x7-o6-f32]'")
    show.add_argument("--impl", metavar="MODULE_OR_PATH", default=None,
                      help="module name or path to a .py file (default: refcheck's built-in layers)")
    show.add_argument("--cases", metavar="DIR", help="folder of case files (default: the built-in cases)")
    show.add_argument("--seed", type=int, default=0, help="base seed of the generated inputs (default: 0)")
    show.add_argument("--out", metavar="DIR", default="reports", help="where the figure goes (default: ./reports)")


def _print_report(console, records, meta, not_implemented, verbose: bool, print_coverage_rows: bool = True) -> None:
    from .report import cases_frame, failure_groups, skip_reasons, summary_frame
    from .report.console import print_coverage, print_failures, print_skips, print_summary

    print_summary(console, summary_frame(cases_frame(records), not_implemented))
    print_failures(console, failure_groups(records, meta.get("options") or {}), verbose=verbose)
    print_skips(console, skip_reasons(records))
    if print_coverage_rows and meta.get("coverage"):
        print_coverage(console, meta["coverage"])


def _report(args: argparse.Namespace) -> int:
    from .report import append_step_summary, load_results, write_reports
    from .report.console import make_console

    console = make_console()
    try:
        records, meta = load_results(args.dir)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    not_implemented = meta.pop("not_implemented", [])
    paths = write_reports(args.dir, records, meta, not_implemented, plots=not args.no_plots)
    _print_report(console, records, meta, not_implemented, args.verbose)
    console.print(str(meta.get("totals", "")), markup=False)
    console.print(f"written: {', '.join(sorted(str(p) for p in paths.values()))}", markup=False, soft_wrap=True)
    append_step_summary(paths["summary.md"].read_text(encoding="utf-8"))
    bad = any(r.get("status") in ("failed", "error") for r in records)
    return EXIT_FAILED if bad else EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from .report import load_results
    from .report.diff import diff_runs

    try:
        old, _ = load_results(args.old)
        new, _ = load_results(args.new)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    result = diff_runs(old, new)
    table = result.table.copy()
    for column in ("old err/tol", "new err/tol"):
        table[column] = [("" if v != v else f"{v:.3g}") for v in table[column]]
    print(f"refcheck diff {args.old} -> {args.new}: {result.headline()}")
    if not table.empty:
        print(table.to_markdown(index=False) if args.md else table.to_string(index=False))
    return EXIT_FAILED if result.regressed else EXIT_OK


def _find_case(impl: str | None, case_id: str, cases_dir: str | None, seed: int):
    from .execution.sweep import plan_sweep
    from .specs import LAYERS

    layer = case_id.split("[", 1)[0]
    if layer not in LAYERS:
        raise UsageError(f"{case_id!r}: not a case id (it should start with a layer name, e.g. conv2d[...])")
    for quick in (False, True):
        plan = plan_sweep(impl, [layer], cases_dir, quick=quick, seed=seed)
        found = [case for case in plan.cases if case.id == case_id]
        if found:
            return found[0]
    raise UsageError(f"no case with id {case_id!r} in this sweep (check --cases and --seed)")


def _case_figure(impl: str | None, case, failing: list[str], worst: dict) -> tuple[bytes, list[str]]:
    """Run one case and draw it; returns the PNG and the tensors drawn."""
    from .execution.case_arrays import case_arrays
    from .report.plots import case_figure

    results, reference = case_arrays(impl, case)
    tensors = [t for t in failing if t in reference] or [t for t in reference if reference[t] is not None]
    return case_figure(case.id, results, reference, tensors, worst), tensors


def _draw_failing_cases(console, impl, cases, records, options, out: Path) -> None:
    """The figure of each failing group's worst case (at most FIGURES_PER_RUN), under out/cases/."""
    import ast

    from .report import case_figure_path, failure_groups
    from .report.files import write_atomically

    by_id = {case.id: case for case in cases}
    contents = {}
    for group in [g for g in failure_groups(records, options) if g.status == "failed"][:FIGURES_PER_RUN]:
        rows = [r for r in records if r["case"] == group.case and r["status"] == "failed"]
        worst = {}
        for r in rows:
            try:
                worst[r["tensor"]] = ast.literal_eval(r.get("worst_index") or "None")
            except (ValueError, SyntaxError):
                worst[r["tensor"]] = None
        try:
            contents[case_figure_path(group.case)], _ = _case_figure(impl, by_id[group.case],
                                                                     [r["tensor"] for r in rows], worst)
        except Exception as error:  # a figure is an extra: the report is written regardless
            console.print(f"no figure for {group.case}: {type(error).__name__}: {error}", markup=False)
    if contents:
        write_atomically(out, contents)


def _show(args: argparse.Namespace) -> int:
    from .compare import compare_tensor
    from .execution.case_arrays import case_arrays
    from .report import case_figure_path
    from .report.files import write_atomically
    from .report.plots import case_figure

    case = _find_case(args.impl, args.case, args.cases, args.seed)
    results, reference = case_arrays(args.impl, case)
    failing, worst = [], {}
    for tensor, expected in reference.items():
        if expected is None:
            continue
        outcome = compare_tensor(tensor, results.get(tensor), expected, None, case.dtype, case.tolerance_map)
        worst[tensor] = outcome.worst_index
        print(f"{tensor}: {'passed' if outcome.passed else 'failed'}"
              + (f": {outcome.reason}" if outcome.reason else
                 f" ({outcome.error_eps:.3g} eps, {outcome.tolerance_eps:.3g} allowed)"))
        if not outcome.passed:
            failing.append(tensor)
    tensors = failing or [t for t in reference if reference[t] is not None]
    png = case_figure(case.id, results, reference, tensors, worst)
    path = write_atomically(Path(args.out), {case_figure_path(case.id): png})[case_figure_path(case.id)]
    print(f"{'failing tensors: ' + ', '.join(failing) if failing else 'every tensor passes'}; figure: {path}")
    return EXIT_FAILED if failing else EXIT_OK
