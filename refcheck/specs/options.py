"""Options shared by the command line and the pytest plugin, defined once (help texts)."""
from __future__ import annotations

__all__ = ["FORWARD_ONLY_HELP", "MAP_HELP"]

FORWARD_ONLY_HELP = "check outputs only, for code that has no backward by design (gradients are not compared)"
MAP_HELP = ("a TOML mapping of your classes or functions to layers (default: refcheck.toml beside the code, "
            "or [tool.refcheck] in its pyproject.toml)")
