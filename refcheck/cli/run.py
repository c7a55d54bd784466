"""`refcheck run`: plan, check, report, and the exit code."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..specs import UsageError

from .exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NOTHING_CHECKED, EXIT_OK
from .report_commands import draw_failing_cases, print_report

__all__ = ["run_command", "where_cases"]


def run_command(args: argparse.Namespace) -> int:
    import signal

    from ..execution.leftovers import adopt_orphans
    from ..execution.safe_channel import shut_to_workers

    shut_to_workers()  # the workers run the code under test as the same user
    adopt_orphans()  # what they detach stays below this process, to be stopped (leftovers.py)
    previous = _terminate_as_interrupt()
    try:
        return _run(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    from ..execution.oracle_pool import start_oracle_early
    from ..report.console import make_console

    console = make_console()
    _check_out_folder(args.out)
    cache = _cache_dir(args)
    oracle = start_oracle_early(args.workers, None if cache is None else str(cache))
    try:
        return _plan_and_run(args, console, oracle, cache)
    except UsageError as error:
        from ..report.files import write_error_reports

        write_error_reports(Path(args.out), str(error))
        raise
    finally:
        if oracle is not None:
            oracle.shutdown(wait=False, cancel_futures=True)


def _terminate_as_interrupt() -> Any:
    """SIGTERM (a CI job's timeout, `timeout`, `kill`) stops the run as Ctrl-C does: what finished is
    written, marked interrupted, instead of the process ending with the last run's reports in --out.
    Returns the handler it replaced (None when it could not install one: not the main thread)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _cache_dir(args: argparse.Namespace) -> Path | None:
    """The folder of torch's cached results (expansions and figures beside them); None with
    --no-oracle-cache."""
    from ..oracle import default_cache_dir

    return None if args.no_oracle_cache else Path(args.oracle_cache or default_cache_dir())


def _plan_and_run(args, console, oracle, cache) -> int:  # type: ignore[no-untyped-def]
    from rich.markup import escape

    from ..execution.leftovers import stop_leftovers
    from ..execution.options import check_options
    from ..execution.planning import no_cases_message, plan_isolated
    from ..execution.sweep import run_plan
    from ..report.console import progress_bar
    from ..report.stream import RecordStream
    from ..oracle import default_cache_dir

    # Expansions beside torch's cached results (and off with them: a grader's run reads no cache).
    expansions = None if cache is None else str(cache / "expansions")
    plan = plan_isolated(args.impl, args.layers, args.cases, dtypes=args.dtype, quick=args.quick, seed=args.seed,
                         map_path=args.map, forward_only=args.forward_only, isolate=args.workers > 0,
                         expansion_cache=expansions)
    # Nothing the module started while it was loaded outlives its planning worker.
    stop_leftovers()
    args.named = {}  # case id -> its --where text, for the rerun commands
    if args.where:
        plan.cases = where_cases(args.layers, args.where, args.cases, args.seed)
        args.named = {case.id: text for case, text in zip(plan.cases, args.where)}
    if args.case:
        wanted = [c.strip() for c in args.case.split(",") if c.strip()]
        if any(c not in {case.id for case in plan.cases} for c in wanted):
            # An id from the other sweep (quick vs full) names the same configuration: look there too.
            other = plan_isolated(args.impl, args.layers, args.cases, dtypes=args.dtype, quick=not args.quick,
                                  seed=args.seed, map_path=args.map, forward_only=args.forward_only,
                                  isolate=args.workers > 0, expansion_cache=expansions)
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
        raise UsageError(no_cases_message(plan))
    console.print(f"refcheck {__version__}: {len(plan.cases)} cases of {len({c.layer for c in plan.cases})} layers "
                  f"for [bold]{escape(plan.implementation.name)}[/]")
    started = time.perf_counter()
    checking = check_options(vars(args), args.oracle_cache or str(default_cache_dir()))
    counts: dict[str, int] = {}
    args.checked_layers = set()  # layers with a case not skipped
    with RecordStream(args.out) as stream:  # records on disk as cases finish; the reports read them back
        with progress_bar(console, len(plan.cases)) as advance:
            def on_case(case, records) -> None:  # type: ignore[no-untyped-def]
                status = min((r["status"] for r in records), key=lambda s: _STATUS_ORDER.get(s, 4), default="skipped")
                counts[status] = counts.get(status, 0) + 1
                if status != "skipped":
                    args.checked_layers.add(case.layer)
                advance(case, records)

            result = run_plan(plan, checking, on_case=on_case, stream=stream, oracle_executor=oracle)
        return _report_run(args, console, plan, result, stream, counts, started, cache)


_STATUS_ORDER = {"error": 0, "failed": 1, "passed": 2, "skipped": 3}


def _report_run(args, console, plan, result, stream, counts, started, cache) -> int:  # type: ignore[no-untyped-def]
    from ..execution.leftovers import stop_leftovers
    from ..report import append_step_summary, write_reports
    from ..report.console import print_coverage, print_prose
    from ..report.files import build_report

    elapsed = time.perf_counter() - started
    # No time in the totals: they land in the tracked summary.md, which must not change run to run.
    totals = (f"{result.finished} of {result.total} cases: "
              + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("passed", "failed", "error", "skipped"))
              + (" (interrupted)" if result.interrupted else ""))
    options = {"impl": args.impl, "cases": args.cases, "seed": args.seed, "quick": args.quick,
               "timeout": args.timeout, "dtype": args.dtype, "map": args.map, "forward_only": args.forward_only,
               "allow_frameworks": args.allow_frameworks, **({"where": args.named} if args.named else {})}
    meta = {"refcheck_version": __version__, "implementation": plan.implementation.name,
            "command": " ".join(["refcheck", *sys.argv[1:]]), "seed": args.seed, "quick": args.quick,
            "duration_s": elapsed, "interrupted": result.interrupted, "totals": totals, "options": options,
            "coverage": plan.coverage_rows(), "implementations": plan.implementation_rows(),
            "not_supported": plan.unsupported, "forward_only": args.forward_only}
    # Heatmaps beside torch's cached results: a layer whose rows did not change is not drawn again.
    figures = None if cache is None else cache / "figures"
    report = build_report(stream, meta, plan.not_implemented, plots=not args.no_plots, figures_cache=figures)
    if not args.no_plots and not result.interrupted:
        draw_failing_cases(console, args.impl, plan.cases, stream, options, Path(args.out), groups=report.groups)
    # Nothing the code under test started outlives the sweep: it could rewrite the reports once
    # written, or keep this run's output open for ever.
    stop_leftovers()
    paths = write_reports(args.out, stream, meta, plan.not_implemented, plots=not args.no_plots, report=report)
    print_report(console, stream, meta, plan.not_implemented, args.verbose, print_coverage_rows=False, report=report)
    skipped = counts.get("skipped", 0)
    print_coverage(console, plan.coverage_rows(), skipped=skipped, checked=result.finished - skipped)
    for row in plan.implementation_rows():
        print_prose(console, f"checked as {row['layer']}: {row['implementation']}")
    for layer, line in plan.unsupported.items():
        print_prose(console, f"{layer} {line}")
    console.print(f"{totals} in {elapsed:.1f} s", markup=False)
    console.print(f"reports: {args.out}/ ({', '.join(sorted({p.name if p.parent == Path(args.out) else p.parent.name + '/' for p in paths.values()}))})", markup=False, soft_wrap=True)
    append_step_summary(paths["summary.md"].read_text(encoding="utf-8"))
    if result.interrupted:
        return EXIT_INTERRUPTED
    if counts.get("failed", 0) or counts.get("error", 0):
        return EXIT_FAILED
    if not counts.get("passed", 0):
        console.print(_nothing_checked(stream), markup=False, soft_wrap=True)
        return EXIT_NOTHING_CHECKED
    planned = list(dict.fromkeys(case.layer for case in plan.cases))
    unchecked = [layer for layer in planned if layer not in args.checked_layers]
    if unchecked:  # a layer checked nowhere (every case skipped when run) is no pass, whatever the others did
        console.print(f"nothing was checked of {', '.join(unchecked)}: every case of "
                      f"{'it' if len(unchecked) == 1 else 'them'} was skipped when run; exit code "
                      f"{EXIT_NOTHING_CHECKED}", markup=False, soft_wrap=True)
        return EXIT_NOTHING_CHECKED
    return EXIT_OK


def where_cases(layers: str | None, where: list[str], cases_dir: str | None, seed: int) -> list:
    """The cases that ``--where`` names (one each), of the one layer ``--layers`` names."""
    from ..cases import load_spaces
    from ..cases.where import case_from_where

    chosen = [layer.strip() for layer in (layers or "").split(",") if layer.strip()]
    if len(chosen) != 1:
        raise UsageError("--where: name exactly one layer with --layers (the parameters are that layer's)")
    spaces = load_spaces(cases_dir, chosen)
    if not spaces:
        raise UsageError(f"--where: the case files have no space for {chosen[0]}")
    return [case_from_where(spaces[0], text, seed) for text in where]


def _nothing_checked(stream) -> str:  # type: ignore[no-untyped-def]
    """Why a run checked nothing: its skip reasons, most frequent first."""
    import pandas as pd

    from ..report import case_statuses, cases_frame

    statuses = pd.concat([case_statuses(cases_frame(records)) for _, records in stream.layers()], ignore_index=True)
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


