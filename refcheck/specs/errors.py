"""Errors refcheck raises for bad input; each names what is wrong and how to fix it."""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CaseFileError", "RefcheckError", "Unsupported", "UsageError"]


class RefcheckError(Exception):
    """Base class: a problem with what refcheck was asked to do (exit code 2 on the command line)."""


class UsageError(RefcheckError):
    """A bad command-line value or API argument."""


class CaseFileError(RefcheckError):
    """A malformed case file: names the file, the key and, where known, the allowed values."""

    def __init__(self, path: str, key: str, message: str, allowed: Sequence[object] = ()) -> None:
        self.path, self.key, self.allowed = path, key, tuple(allowed)
        where = f"{path}: {key}" if key else path
        text = f"{where}: {message}"
        if allowed:
            text += f" (allowed: {', '.join(str(a) for a in allowed)})"
        super().__init__(text)


class Unsupported(Exception):
    """Raised by an implementation (or an adapter) for a case it does not support.

    The case is reported ``skipped`` with the message as the reason, never failed; use it for limits
    the signature cannot express (an input rank, a combination of options).
    """
