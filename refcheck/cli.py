"""The command line: ``refcheck run`` and ``refcheck convention``.

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
    _add_check_options(run)

    convention = commands.add_parser("convention", help="the convolution vs cross-correlation explorer",
                                     description="Compute and write the convolution vs cross-correlation "
                                                 "explorer (convention.md, convention.html, figures); with "
                                                 "--impl, classify that implementation's conv2d.")
    convention.add_argument("--out", metavar="DIR", default="reports", help="output folder (default: ./reports)")
    convention.add_argument("--impl", metavar="MODULE_OR_PATH", help="classify this implementation's conv2d")
    return parser


def _run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from .report.console import make_console, print_coverage, print_summary, progress_bar
    from .report import case_statuses, cases_frame, summary_frame, write_reports
    from .execution.options import check_options
    from .execution.sweep import plan_sweep, run_plan
    from .oracle import default_cache_dir

    console = make_console()
    _check_out_folder(args.out)
    plan = plan_sweep(args.impl, args.layers, args.cases, dtypes=args.dtype, quick=args.quick, seed=args.seed)
    if args.case:
        wanted = [c.strip() for c in args.case.split(",") if c.strip()]
        if any(c not in {case.id for case in plan.cases} for c in wanted):
            # An id from the other sweep (quick vs full) names the same configuration: look there too.
            other = plan_sweep(args.impl, args.layers, args.cases, dtypes=args.dtype, quick=not args.quick,
                               seed=args.seed)
            known = {case.id for case in plan.cases}
            plan.cases += [case for case in other.cases if case.id not in known]
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
    options = check_options(vars(args), args.oracle_cache or str(default_cache_dir()))
    with progress_bar(console, len(plan.cases)) as advance:
        result = run_plan(plan, options, on_case=advance)
    elapsed = time.perf_counter() - started
    frame = cases_frame(result.records)
    statuses = case_statuses(frame)
    counts = statuses["status"].value_counts()
    totals = (f"{result.finished} of {result.total} cases in {elapsed:.1f} s: "
              + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("passed", "failed", "error", "skipped"))
              + (" (interrupted)" if result.interrupted else ""))
    meta = {"refcheck_version": __version__, "implementation": plan.implementation.name,
            "command": " ".join(["refcheck", *sys.argv[1:]]), "seed": args.seed, "quick": args.quick,
            "duration_s": elapsed, "interrupted": result.interrupted, "totals": totals,
            "coverage": plan.coverage_rows()}
    paths = write_reports(args.out, result.records, meta, plan.not_implemented)
    print_summary(console, summary_frame(frame, plan.not_implemented))
    print_coverage(console, plan.coverage_rows())
    console.print(totals, markup=False)
    console.print(f"reports: {', '.join(str(p) for p in paths.values())}", markup=False)
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
        if args.command == "run":
            return _run(args)
        return _convention(args)
    except RefcheckError as error:
        print(f"refcheck: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("refcheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
