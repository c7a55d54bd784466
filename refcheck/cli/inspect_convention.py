"""`refcheck inspect` and `refcheck convention`."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..specs import UsageError

from .exit_codes import EXIT_OK

__all__ = ["add_inspect_command", "convention_command", "inspect_command"]


def add_inspect_command(commands: argparse._SubParsersAction) -> None:
    from ..execution.options import MAP_HELP

    inspect = commands.add_parser("inspect", help="show which of your functions or classes refcheck checks as "
                                                  "which layer, and how",
                                  description="Load an implementation and show, for each layer, the function or "
                                              "class used, the adapter and layout, the hyperparameters it "
                                              "supports, and what was not used and why; then a starting mapping "
                                              "for what could not be decided.")
    inspect.add_argument("--impl", metavar="MODULE_OR_PATH", required=True,
                         help="module name, path to a .py file, or a package folder")
    inspect.add_argument("--map", metavar="FILE", default=None, help=MAP_HELP)


def inspect_command(args: argparse.Namespace) -> int:
    from ..adapters.inspect_report import inspect_text
    from ..execution.frameworks import frameworks_imported_by
    from ..execution.implementation import load_implementation

    implementation = load_implementation(args.impl, args.map)
    print(inspect_text(implementation.name, implementation.layers, implementation.discovery,
                       implementation.mapping_source, frameworks=frameworks_imported_by(implementation.module)))
    return EXIT_OK


def convention_command(args: argparse.Namespace) -> int:
    from ..report.console import make_console
    from ..convention import classify_conv2d, key_table, write_convention_report

    console = make_console()
    impl_report = None
    if args.impl:
        from ..execution.implementation import load_implementation

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


