"""Command-line arguments that several commands take with the same meaning and help."""
from __future__ import annotations

import argparse

__all__ = ["add_dtype_argument", "add_impl_argument"]


def add_impl_argument(parser: argparse.ArgumentParser) -> None:
    """``--impl``: the implementation to check (default: refcheck's built-in layers)."""
    parser.add_argument("--impl", metavar="MODULE_OR_PATH", default=None,
                        help="module name or path to a .py file (default: refcheck's built-in layers)")


def add_dtype_argument(parser: argparse.ArgumentParser) -> None:
    """``--dtype``: only these dtypes."""
    parser.add_argument("--dtype", metavar="D,D", help="only these dtypes: float32, float64 (default: both)")
