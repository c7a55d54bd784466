"""Stage 5, execution: cases and an implementation in, result records out.

- :mod:`.implementation`: loading the user's module (or the built-in layers) into layer functions;
- :mod:`.run_case`: one case: inputs, the implementation (contained), the oracle, the comparison,
  the self-check and the diagnosis;
- :mod:`.selfcheck`: the implementation's backward against a finite difference of its own forward;
- :mod:`.runner`: scheduling cases through an executor (in-process or a process pool), with
  timeouts and dead workers turned into records;
- :mod:`.sweep`: planning a sweep (which cases, for which implementation) and the ``check`` API.
"""
from __future__ import annotations

__all__: list[str] = []
