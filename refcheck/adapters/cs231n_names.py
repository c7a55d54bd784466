"""CS231n function names that are also contract names.

CS231n's ``lstm_forward(x, h0, Wx, Wh, b)`` has the name of the contract's ``lstm_forward(input,
h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)``. The two are told apart by the signature: five
positional parameters with a weight third (``Wx``) is CS231n's, adapted in
:mod:`refcheck.adapters.cs231n_seqloss`; anything else is the contract's.
"""
from __future__ import annotations

import inspect
from types import ModuleType

__all__ = ["cs231n_owns"]


def cs231n_owns(module: ModuleType, layer: str) -> bool:
    """Whether ``<layer>_forward`` in ``module`` is the CS231n function of the same name."""
    if layer != "lstm":
        return False
    forward = getattr(module, "lstm_forward", None)
    try:
        parameters = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p.name for p in parameters
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 5 and positional[2].lower().startswith("w")
