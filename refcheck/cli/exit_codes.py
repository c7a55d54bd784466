"""Exit codes of ``refcheck run`` (and the other commands).

0 every case passed or was skipped, and something was checked; 1 a case failed or errored; 2 a
usage or case-file error (no case checked; --out holds the error); 5 nothing was checked (every case skipped or not
implemented; as pytest's "no tests ran"); 130 interrupted (the finished part is written).
"""
from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_NOTHING_CHECKED", "EXIT_OK", "EXIT_USAGE"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_CHECKED, EXIT_INTERRUPTED = 0, 1, 2, 5, 130
