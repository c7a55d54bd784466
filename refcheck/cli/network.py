"""`refcheck network`: a whole model trained for a few steps beside its torch twin."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from .. import __version__
from .exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NOTHING_CHECKED, EXIT_OK
from .shared_arguments import add_dtype_argument, add_impl_argument

__all__ = ["add_network_command", "network_command"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def add_network_command(commands) -> None:  # type: ignore[no-untyped-def]
    from ..execution.options import MAP_HELP, OPTIONS

    timeout = next(option for option in OPTIONS if option.name == "timeout")
    memory = next(option for option in OPTIONS if option.name == "memory-limit")
    network = commands.add_parser(
        "network", help="check a whole model (loss, gradients, training steps) against a torch twin",
        description="Check a model end to end against a torch twin with the same parameters: the loss, every "
                    "parameter gradient and the parameters after each training step, in float64 and float32. "
                    "The model is a CS231n-style class named by the model file (params dict, loss(X, y) -> "
                    "(loss, grads)), or the implementation's layers composed in the model file's order. Writes "
                    "network.csv, network.md, network.json and a loss-curve figure per model.",
        epilog="Exit codes: 0 all passed, 1 any failed or errored, 2 usage or model-file error, 5 nothing was "
               "checked, 130 interrupted.")
    add_impl_argument(network)
    network.add_argument("--model", metavar="CASEFILE", default=None,
                         help="model files or shipped model names, comma-separated (default: every shipped model)")
    add_dtype_argument(network)
    network.add_argument("--out", metavar="DIR", default="reports", help="report folder (default: ./reports)")
    network.add_argument("--timeout", type=lambda t: _parse(timeout, t), default=timeout.default, metavar="S",
                         help="seconds allowed per model and dtype before it is stopped as an error (default: 60)")
    network.add_argument("--steps", type=_positive_int, default=None, metavar="N",
                         help="training steps (default: the model file's)")
    network.add_argument("--memory-limit", type=lambda t: _parse(memory, t), default=None, metavar="SIZE",
                         help=memory.help)
    network.add_argument("--map", metavar="FILE", default=None, help=MAP_HELP)
    network.add_argument("--allow-frameworks", action="store_true",
                         help=next(option for option in OPTIONS if option.name == "allow-frameworks").help)
    network.add_argument("--no-plots", action="store_true", help="write no loss-curve figures")


def _parse(option, text: str):  # type: ignore[no-untyped-def]
    try:
        return option.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def network_command(args: argparse.Namespace) -> int:
    from ..execution.executors import ProcessExecutor
    from ..execution.limits import default_memory_limit
    from ..execution.sweep import parse_list
    from ..network.check import DTYPES, check_models
    from ..network.model_file import load_models
    from ..network.report import write_network_reports
    from .run import _check_out_folder

    _check_out_folder(args.out)
    dtypes = parse_list(args.dtype, DTYPES, "--dtype") or list(DTYPES)
    models = load_models(args.model)
    if args.steps:
        models = [dataclasses.replace(model, steps=args.steps) for model in models]
    impl = args.impl or "refcheck.layers"
    print(f"refcheck {__version__}: {len(models)} model(s) x {len(dtypes)} dtype(s) for {impl}")
    started = time.perf_counter()
    executor = ProcessExecutor(1, args.timeout, kind="implementation",
                               memory_limit=args.memory_limit or default_memory_limit(1))
    oracle = ProcessExecutor(1, None, kind="oracle")
    interrupted = False
    runs = []
    try:
        runs = check_models(args.impl, models, dtypes, timeout=args.timeout, map_path=args.map, executor=executor,
                            oracle=oracle, allow_frameworks=args.allow_frameworks, on_run=lambda run: print(_line(run), flush=True))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        executor.shutdown(cancel_futures=True)
        oracle.shutdown(cancel_futures=True)
    meta = {"refcheck_version": __version__, "implementation": impl, "command": " ".join(["refcheck", *sys.argv[1:]]),
            "models": [m.source for m in models], "dtypes": dtypes, "interrupted": interrupted}
    paths = write_network_reports(args.out, runs, meta, plots=not args.no_plots)
    statuses = [run.status for run in runs]
    print(f"{len(runs)} runs: " + ", ".join(f"{statuses.count(s)} {s}" for s in ("passed", "failed", "error", "skipped"))
          + f" in {time.perf_counter() - started:.1f} s")
    print(f"reports: {args.out}/ ({', '.join(sorted(p.name for p in paths.values()))})")
    if interrupted:
        return EXIT_INTERRUPTED
    if "failed" in statuses or "error" in statuses:
        return EXIT_FAILED
    return EXIT_OK if "passed" in statuses else EXIT_NOTHING_CHECKED


def _line(run) -> str:  # type: ignore[no-untyped-def]
    gap = run.largest_gap
    text = f"{run.model.name} {run.dtype}: {run.status} ({run.style or 'not run'})"
    if gap is not None:
        text += f", largest loss gap {gap[1]:.3g} at step {gap[0]}"
    if run.located:
        text += f"\n  first disagreement: {run.located}"
    elif run.status == "skipped":
        text += f"\n  {run.records[0]['reason'] if run.records else ''}"
    return text
