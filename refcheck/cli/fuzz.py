"""`refcheck fuzz`: search each layer with hypothesis, print the smallest failing case and its rerun command.

Exit codes: 0 no failing case found (and something was checked), 1 a layer has a failing case, 2
usage error, 5 every drawn case was skipped, 130 interrupted.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, TextIO

from .exit_codes import EXIT_FAILED, EXIT_NOTHING_CHECKED, EXIT_OK
from .shared_arguments import add_dtype_argument, add_impl_argument

__all__ = ["DEFAULT_DATABASE", "add_fuzz_command", "fuzz_command", "rerun_command"]

DEFAULT_DATABASE = Path(".refcheck") / "hypothesis"
"""Where failing examples are kept between runs (relative to the current folder)."""
_DEFAULT_TIMEOUT = 60.0


def add_fuzz_command(commands: Any, add_check_options: Any) -> None:
    fuzz = commands.add_parser(
        "fuzz", help="search each layer for a failing case and shrink it to the smallest one",
        description="Draw cases of each layer with hypothesis (valid configurations beyond the sweep, special "
                    "input values), check each exactly as `refcheck run` does, and shrink a failure to the "
                    "smallest failing case; print it with the `refcheck run` command that reruns it.",
        epilog="Exit codes: 0 no failing case found, 1 a failing case found, 2 usage error, 5 nothing checked, "
               "130 interrupted.")
    add_impl_argument(fuzz)
    fuzz.add_argument("--layers", metavar="A,B", help="only these layers (default: all the implementation has)")
    add_dtype_argument(fuzz)
    fuzz.add_argument("--cases", metavar="DIR", help="folder of case files whose spaces are searched "
                                                      "(default: the built-in cases)")
    fuzz.add_argument("--max-examples", metavar="N", type=int, default=100,
                      help="cases drawn per layer before it counts as clean (default: 100)")
    fuzz.add_argument("--seed", type=int, default=None,
                      help="derandomise: the same cases in the same order on every run (for CI)")
    fuzz.add_argument("--database", metavar="DIR", default=str(DEFAULT_DATABASE),
                      help=f"folder where failing examples are kept and tried first next time "
                           f"(default: ./{DEFAULT_DATABASE})")
    fuzz.add_argument("--no-database", action="store_true", help="keep no examples between runs")
    fuzz.add_argument("--oracle-cache", metavar="DIR", default=None,
                      help="folder of torch's cached results (default: none; drawn cases are rarely drawn again)")
    add_check_options(fuzz)


def rerun_command(args: argparse.Namespace, layer: str, where: str, base_seed: int) -> str:
    """The `refcheck run` command that checks exactly this case, the same way."""
    words = ["refcheck", "run"]
    if args.impl:
        words += ["--impl", args.impl]
    words += ["--layers", layer, "--where", where, "--seed", str(base_seed)]
    if args.cases:
        words += ["--cases", args.cases]
    if args.map:
        words += ["--map", args.map]
    for flag in ("forward_only", "allow_frameworks", "no_selfcheck"):
        if getattr(args, flag):
            words.append("--" + flag.replace("_", "-"))
    if args.timeout != _DEFAULT_TIMEOUT:
        words += ["--timeout", f"{args.timeout:g}"]
    return " ".join(shlex.quote(word) for word in words)


class _ProgressLine:
    """One line rewritten in place on a terminal; on a pipe, the finished line of each layer only."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.live, self.width = stream, stream.isatty(), 0

    def update(self, progress: Any) -> None:
        if self.live:
            text = progress.line()[:160]
            self.stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
            self.stream.flush()

    def finish(self, text: str, out: TextIO) -> None:
        if self.live:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0
        print(text, file=out, flush=True)


def fuzz_command(args: argparse.Namespace) -> int:
    from ..cases import load_spaces
    from ..execution.fuzz import fuzz_layer
    from ..execution.implementation import BUILTIN
    from ..execution.options import check_options
    from ..execution.planning import plan_isolated
    from ..execution.runner import CaseChecker
    from ..execution.sweep import parse_list
    from ..cases import DTYPES
    from ..specs import UsageError

    if args.max_examples < 1:
        raise UsageError(f"--max-examples: expected a whole number of 1 or more, got {args.max_examples}")
    dtypes = parse_list(args.dtype, DTYPES, "--dtype")
    plan = plan_isolated(args.impl, args.layers, args.cases, dtypes=args.dtype, quick=True, map_path=args.map,
                         forward_only=args.forward_only)
    layers = list(dict.fromkeys(case.layer for case in plan.cases))
    if not layers:
        raise UsageError("nothing to fuzz: the implementation has none of the selected layers "
                         f"(it provides: {', '.join(plan.implementation.layers) or 'nothing'})")
    spaces = {space.layer: space for space in load_spaces(args.cases, layers)}
    checking = check_options(vars(args), args.oracle_cache)
    checking.forward_only = checking.forward_only or plan.forward_only
    checking.map_path = checking.map_path or plan.implementation.map_path
    reference = None if plan.implementation.name == BUILTIN else plan.implementation.name
    database = None
    if not args.no_database:
        from hypothesis.database import DirectoryBasedExampleDatabase

        database = DirectoryBasedExampleDatabase(args.database)
    out = sys.stdout
    line = _ProgressLine(sys.stderr)
    print(f"refcheck fuzz: {_plural(len(layers), 'layer')} of {plan.implementation.name}, "
          f"up to {args.max_examples} examples each" + (f", seed {args.seed}" if args.seed is not None else ""),
          file=out, flush=True)
    checker = CaseChecker(reference, checking)
    failures, tried, checked = [], 0, 0
    try:
        for layer in layers:
            outcome = fuzz_layer(checker, spaces[layer], capabilities=_capabilities(plan, layer),
                                 max_examples=args.max_examples, seed=args.seed,
                                 database=database, database_key=plan.implementation.name, dtypes=dtypes,
                                 on_progress=line.update)
            progress = outcome.progress
            tried += progress.examples
            checked += progress.examples - progress.skipped
            skipped = f" ({progress.skipped} skipped when run)" if progress.skipped else ""
            if outcome.failure is None:
                line.finish(f"{layer}: clean after {progress.examples} examples{skipped}", out)
                continue
            line.finish(f"{layer}: FAILED; shrunk in {progress.shrinks} steps ({progress.examples} examples{skipped})",
                        out)
            failures.append(outcome)
            _print_failure(out, args, outcome)
    finally:
        checker.close(cancel=True)
    print(f"{_plural(tried, 'example')} over {_plural(len(layers), 'layer')}: "
          + (f"{len(failures)} failing ({', '.join(o.layer for o in failures)})" if failures else "no failing case"),
          file=out, flush=True)
    if failures:
        return EXIT_FAILED
    return EXIT_OK if checked else EXIT_NOTHING_CHECKED


def _capabilities(plan: Any, layer: str) -> Any:
    """What the layer's code takes, so that the search draws only such cases (a class without a
    padding argument drew padded pools: 199 of 200 examples skipped, and 'clean')."""
    from ..adapters.capabilities import capabilities_of, value_check
    from ..cases import ALL_SUPPORTED, Capabilities

    functions = plan.implementation.layers.get(layer)
    if functions is None:
        return ALL_SUPPORTED
    if hasattr(functions, "forward"):  # loaded here (refcheck's own layers): every limit is known
        return capabilities_of(functions)
    return Capabilities(value_supported=value_check(layer, functions.accepted, functions.fixed))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _print_failure(out: TextIO, args: argparse.Namespace, outcome: Any) -> None:
    from ..report.failure_text import failure_message

    failure = outcome.failure
    case = failure.drawn.case
    command = rerun_command(args, outcome.layer, failure.where, failure.drawn.base_seed)
    print(f"\nsmallest failing case of {outcome.layer}: {case.id}", file=out)
    print(f"  parameters: {failure.where}; base seed {failure.drawn.base_seed}", file=out)
    shapes = ", ".join(f"{name} {shape}" for name, shape in case.shapes if shape is not None)
    print(f"  tensors: {shapes}", file=out)
    bad = [f"{r['tensor']} ({r['status']})" for r in failure.records if r["status"] in ("failed", "error")]
    print(f"  failing: {', '.join(bad)}", file=out)
    message = failure_message(failure.records, command).rsplit("\n\nReproduce this case alone:", 1)[0]
    print("  " + message.replace("\n", "\n  "), file=out)
    print("Rerun exactly this case:", file=out)
    print(command, file=out, flush=True)
