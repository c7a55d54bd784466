"""`refcheck report`, `diff` and `show`, and the failure figures `run` draws."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..specs import UsageError

from .exit_codes import EXIT_FAILED, EXIT_OK
from .shared_arguments import add_impl_argument

__all__ = ["add_report_commands", "diff_command", "draw_failing_cases", "print_report", "report_command", "show_command"]

FIGURES_PER_RUN = 12


def add_report_commands(commands: argparse._SubParsersAction) -> None:
    from ..execution.options import MAP_HELP

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
    add_impl_argument(show)
    show.add_argument("--cases", metavar="DIR", help="folder of case files (default: the built-in cases)")
    show.add_argument("--seed", type=int, default=0, help="base seed of the generated inputs (default: 0)")
    show.add_argument("--out", metavar="DIR", default="reports", help="where the figure goes (default: ./reports)")
    show.add_argument("--map", metavar="FILE", default=None, help=MAP_HELP)


def print_report(console, records, meta, not_implemented, verbose: bool, print_coverage_rows: bool = True,
                 report=None) -> None:
    from ..report.console import print_coverage, print_failures, print_selfcheck, print_skips, print_summary
    from ..report.files import build_report

    report = report or build_report(records, meta, not_implemented, plots=False)
    print_summary(console, report.summary)
    print_failures(console, report.groups, verbose=verbose)
    print_skips(console, report.skips)
    print_selfcheck(console, records)
    if print_coverage_rows and meta.get("coverage"):
        skipped = sum(row["cases"] for row in report.skips)
        cases = len({r.get("case") for r in records})
        print_coverage(console, meta["coverage"], skipped=skipped, checked=cases - skipped)


def report_command(args: argparse.Namespace) -> int:
    from ..report import append_step_summary, load_results, write_reports
    from ..report.console import make_console

    console = make_console()
    try:
        records, meta = load_results(args.dir)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    not_implemented = meta.pop("not_implemented", [])
    from ..report.files import build_report

    report = build_report(records, meta, not_implemented, plots=not args.no_plots)
    paths = write_reports(args.dir, records, meta, not_implemented, plots=not args.no_plots, report=report)
    print_report(console, records, meta, not_implemented, args.verbose, report=report)
    console.print(str(meta.get("totals", "")), markup=False)
    console.print(f"written: {', '.join(sorted(str(p) for p in paths.values()))}", markup=False, soft_wrap=True)
    append_step_summary(paths["summary.md"].read_text(encoding="utf-8"))
    bad = any(r.get("status") in ("failed", "error") for r in records)
    return EXIT_FAILED if bad else EXIT_OK


def diff_command(args: argparse.Namespace) -> int:
    from ..report import load_results
    from ..report.diff import diff_runs

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


def _find_case(impl: str | None, case_id: str, cases_dir: str | None, seed: int, map_path: str | None = None):
    from ..execution.planning import plan_isolated
    from ..specs import LAYERS

    layer = case_id.split("[", 1)[0]
    if layer not in LAYERS:
        raise UsageError(f"{case_id!r}: not a case id (it should start with a layer name, e.g. conv2d[...])")
    for quick in (False, True):
        # Planned in a worker, as `refcheck run` plans: the user's module is never loaded here.
        plan = plan_isolated(impl, [layer], cases_dir, quick=quick, seed=seed, map_path=map_path)
        found = [case for case in [*plan.cases, *plan.outside] if case.id == case_id]
        if found:
            return found[0]
    raise UsageError(f"no case with id {case_id!r} in this sweep (check --cases and --seed)")


def _case_figure(impl: str | None, case, failing: list[str], worst: dict, executor=None,
                 map_path: str | None = None) -> tuple[bytes, list[str]]:
    """Run one case (in an implementation worker) and draw it; returns the PNG and the tensors drawn."""
    from ..execution.case_arrays import case_arrays
    from ..report.plots import case_figure

    results, reference = case_arrays(impl, case, executor=executor, map_path=map_path)
    tensors = [t for t in failing if t in reference] or [t for t in reference if reference[t] is not None]
    return case_figure(case.id, results, reference, tensors, worst), tensors


def draw_failing_cases(console, impl, cases, records, options, out: Path, groups=None) -> None:
    """The figure of each failing group's worst case (at most FIGURES_PER_RUN), under out/cases/."""
    import ast

    from ..report import case_figure_path, failure_groups
    from ..report.files import write_atomically

    from ..execution.executors import ProcessExecutor

    by_id = {case.id: case for case in cases}
    contents = {}
    groups = [g for g in (failure_groups(records, options) if groups is None else groups)
              if g.status == "failed"][:FIGURES_PER_RUN]
    executor = ProcessExecutor(1, 60.0, kind="implementation") if groups else None
    for group in groups:
        rows = [r for r in records if r["case"] == group.case and r["status"] == "failed"]
        worst = {}
        for r in rows:
            try:
                worst[r["tensor"]] = ast.literal_eval(r.get("worst_index") or "None")
            except (ValueError, SyntaxError):
                worst[r["tensor"]] = None
        try:
            contents[case_figure_path(group.case)], _ = _case_figure(impl, by_id[group.case],
                                                                     [r["tensor"] for r in rows], worst, executor,
                                                                     map_path=options.get("map"))
        except Exception as error:  # a figure is an extra: the report is written regardless
            console.print(f"no figure for {group.case}: {type(error).__name__}: {error}", markup=False)
    if executor is not None:
        executor.shutdown()
    if contents:
        write_atomically(out, contents)


def show_command(args: argparse.Namespace) -> int:
    from ..compare import compare_tensor
    from ..execution.case_arrays import CaseDidNotRun, case_arrays
    from ..report import case_figure_path
    from ..report.files import write_atomically
    from ..report.plots import case_figure

    case = _find_case(args.impl, args.case, args.cases, args.seed, args.map)
    try:
        results, reference = case_arrays(args.impl, case, map_path=args.map)
    except CaseDidNotRun as error:  # an error row of the sweep: what it raised, where in the user's code
        print(f"{case.id}: error: {error.reason}")
        if error.traceback:
            print(error.traceback.rstrip())
        return EXIT_FAILED
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
    verdict = "failing tensors: " + ", ".join(failing) if failing else "every tensor passes"
    try:
        png = case_figure(case.id, results, reference, tensors, worst)
    except Exception as error:  # noqa: BLE001 - the figure is an extra: the verdict above stands
        print(f"{verdict}; no figure: {type(error).__name__}: {error}")
    else:
        path = write_atomically(Path(args.out), {case_figure_path(case.id): png})[case_figure_path(case.id)]
        print(f"{verdict}; figure: {path}")
    return EXIT_FAILED if failing else EXIT_OK
