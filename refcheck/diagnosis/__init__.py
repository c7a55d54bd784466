"""Stage 4, diagnosis (trusted side): an executed case with failing tensors in, the known mistake
that explains each failing tensor out.

Each layer family has a module of checks (:mod:`.conv`, :mod:`.dense`, :mod:`.pooling`,
:mod:`.losses`, :mod:`.optim` for the update rules; :mod:`.generic` holds the layer-independent
ones; :mod:`.checks` says which apply to which layer). A check recomputes what one specific mistake would have produced and reports the
mistake when the user's result matches that candidate within the case's tolerance.
:func:`diagnose` (in :mod:`.diagnose`) is the entry point.
"""
from __future__ import annotations

from .checks import checks_for
from .context import Check, Context
from .diagnose import diagnose
from .generic import mutation_message

__all__ = ["Check", "Context", "checks_for", "diagnose", "mutation_message"]
