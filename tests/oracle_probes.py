"""Functions run in refcheck's oracle processes by the tests (imported there by name)."""
from __future__ import annotations

import ctypes
import os

__all__ = ["dumpable", "sends_a_call"]


def dumpable() -> int:
    """This process's dumpable flag (prctl PR_GET_DUMPABLE): 0 when other processes of the user
    can neither read its memory nor open its files through /proc."""
    return ctypes.CDLL(None, use_errno=True).prctl(3, 0, 0, 0, 0)


class _Payload:
    def __reduce__(self):
        return os.makedirs, ("/nonexistent/made_by_an_oracle_message",)


def sends_a_call() -> object:
    """A result whose unpickling would call a function in whichever process reads it."""
    return _Payload()
