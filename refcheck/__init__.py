"""refcheck: check hand-written numpy layers, forward and backward, against torch.autograd.

The public surface: ``check`` (the Python API, rows as cases.csv), ``Unsupported`` (raise it from
an implementation to skip a case it does not support), ``RefcheckError`` and ``CaseFileError``,
and ``strategies`` (hypothesis strategies of valid cases and special values, for your own tests:
``from refcheck import strategies``). Importing refcheck is cheap: torch, pandas and hypothesis
load only when ``check`` or ``strategies`` is first used.
"""
from __future__ import annotations

from typing import Any

from .specs.errors import CaseFileError, RefcheckError, Unsupported, UsageError

__version__ = "0.1.0"
__all__ = ["CaseFileError", "RefcheckError", "Unsupported", "UsageError", "__version__", "check", "strategies"]


def __getattr__(name: str) -> Any:
    if name == "check":
        from .execution.sweep import check

        return check
    if name == "strategies":
        import sys

        from .cases import strategies

        sys.modules.setdefault(f"{__name__}.strategies", strategies)  # later `import refcheck.strategies` works
        return strategies
    raise AttributeError(f"module 'refcheck' has no attribute {name!r}")
