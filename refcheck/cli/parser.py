"""The argument parser of every command."""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from .exit_codes import EXIT_USAGE
from .fuzz import add_fuzz_command
from .inspect_convention import add_inspect_command
from .network import add_network_command
from .report_commands import add_report_commands
from .shared_arguments import add_dtype_argument, add_impl_argument

__all__ = ["build_parser"]

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
    from ..execution.options import OPTIONS

    for option in OPTIONS:
        if option.parse is None:
            parser.add_argument(f"--{option.name}", action="store_true", help=option.help)
        else:
            parser.add_argument(f"--{option.name}", type=_argparse_type(option), default=option.default,
                                metavar=option.metavar, help=option.help)


def build_parser() -> argparse.ArgumentParser:
    from ..specs import LAYERS

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
    add_impl_argument(run)
    run.add_argument("--layers", metavar="A,B", help="only these layers (default: all the implementation has)")
    add_dtype_argument(run)
    run.add_argument("--cases", metavar="DIR", help="folder of case files (default: the built-in cases)")
    run.add_argument("--case", metavar="ID,ID", help="only the cases with these exact ids (to reproduce one)")
    run.add_argument("--where", metavar="PARAMS", action="append",
                     help="run the one case these parameters of the layer's space name, in no sweep or in one, "
                          "such as \"stride=(2, 1), padding=1, values='ties'\" (needs one layer in --layers; "
                          "repeat for several cases; with --seed, the seed its inputs were drawn with)")
    run.add_argument("--out", metavar="DIR", default="reports", help="report folder (default: ./reports)")
    run.add_argument("--seed", type=int, default=0, help="base seed of the generated inputs (default: 0)")
    run.add_argument("--quick", action="store_true",
                     help="a subset of the full sweep holding the same value and pairwise coverage")
    run.add_argument("--oracle-cache", metavar="DIR", default=None,
                     help="folder of torch's cached results (default: $REFCHECK_CACHE_DIR or ~/.cache/refcheck/oracle)")
    run.add_argument("--no-plots", action="store_true", help="write no plots or case figures (faster)")
    run.add_argument("-v", "--verbose", action="store_true", help="list every failure group, not the first few")
    _add_check_options(run)
    add_inspect_command(commands)
    add_report_commands(commands)
    add_network_command(commands)
    add_fuzz_command(commands, _add_check_options)

    convention = commands.add_parser("convention", help="the convolution vs cross-correlation explorer",
                                     description="Compute and write the convolution vs cross-correlation "
                                                 "explorer (convention.md, convention.html, figures); with "
                                                 "--impl, classify that implementation's conv2d.")
    convention.add_argument("--out", metavar="DIR", default="reports", help="output folder (default: ./reports)")
    convention.add_argument("--impl", metavar="MODULE_OR_PATH", help="classify this implementation's conv2d")
    return parser



