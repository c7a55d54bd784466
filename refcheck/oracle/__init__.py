"""Stage 2, oracle (trusted side): a case in, torch.autograd's results out.

- :mod:`.torch_reference`: the only module on the checking path that imports torch: a layer in
  float64 (the reference) and at the case's dtype (torch's own error);
- :mod:`.case_reference`: both for a whole case, built from the case's inputs;
- :mod:`.cache`: results kept in memory and on disk, keyed by case, torch version and code.

Importing the stage does not load torch.
"""
from __future__ import annotations

from typing import Any

from .cache import OracleCache, default_cache_dir

__all__ = ["OracleCache", "compute_reference", "compute_references", "default_cache_dir", "oracle_worker_start", "set_torch_threads", "torch_accepts",
           "torch_results", "use_one_thread"]

_LAZY = {"torch_accepts": "torch_reference", "set_torch_threads": "torch_reference", "torch_results": "torch_reference", "use_one_thread": "torch_reference",
         "compute_reference": "case_reference", "compute_references": "case_reference",
         "oracle_worker_start": "case_reference"}


def __getattr__(name: str) -> Any:
    # Lazy: importing the stage must not load torch.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'refcheck.oracle' has no attribute {name!r}")
