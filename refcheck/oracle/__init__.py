"""Stage 2, oracle (trusted side): a case's tensors in, torch.autograd's results out.

The only module on the checking path that imports torch (:mod:`.torch_reference`), and it does so
lazily. Results come in float64 (the reference) and at the case's dtype (torch's own error).
"""
from __future__ import annotations

from typing import Any

__all__ = ["torch_accepts", "torch_results", "use_one_thread"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the stage must not load torch.
    if name in __all__:
        from . import torch_reference

        return getattr(torch_reference, name)
    raise AttributeError(f"module 'refcheck.oracle' has no attribute {name!r}")
