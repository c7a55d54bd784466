"""refcheck: check hand-written numpy layers, forward and backward, against torch.autograd.

The public surface: ``check`` (the Python API, rows as cases.csv), ``Unsupported`` (raise it from
an implementation to skip a case it does not support), ``RefcheckError`` and ``CaseFileError``.
Importing refcheck is cheap: torch and pandas load only when ``check`` runs.
"""
from __future__ import annotations

from typing import Any

from .specs.errors import CaseFileError, RefcheckError, Unsupported, UsageError

__version__ = "0.1.0"
__all__ = ["CaseFileError", "RefcheckError", "Unsupported", "UsageError", "__version__", "check"]


def __getattr__(name: str) -> Any:
    if name == "check":
        from .execution.sweep import check

        return check
    raise AttributeError(f"module 'refcheck' has no attribute {name!r}")
