"""The command line (one module per group of commands): ``refcheck run``, ``fuzz``, ``convention``, ``report``, ``diff``, ``show`` and ``network``.

Exit codes of ``run``: 0 every case passed or was skipped, and something was checked; 1 a case
failed or errored; 2 a usage or case-file error (no case checked; --out holds the error); 5
nothing was checked (every case skipped or not implemented; as pytest's "no tests ran"); 130
interrupted (the finished part is written).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from ..specs import RefcheckError
from .inspect_convention import convention_command, inspect_command
from .network import network_command
from .exit_codes import EXIT_INTERRUPTED, EXIT_USAGE
from .fuzz import fuzz_command
from .parser import build_parser
from .report_commands import diff_command, report_command, show_command
from .run import run_command

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``refcheck`` console script and ``python -m refcheck``."""
    args = build_parser().parse_args(argv)
    try:
        commands = {"run": run_command, "inspect": inspect_command, "convention": convention_command,
                    "report": report_command, "diff": diff_command, "show": show_command,
                    "network": network_command, "fuzz": fuzz_command}
        return commands[args.command](args)
    except RefcheckError as error:
        print(f"refcheck: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("refcheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# --- report, diff, show: re-rendering, comparing runs, drawing one case ---------------------------

