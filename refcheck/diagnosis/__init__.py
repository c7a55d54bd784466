"""Diagnosis of failed cases: which common mistake explains each failing tensor.

Each layer family has a module of checks (:mod:`.conv`, :mod:`.dense`, :mod:`.pooling`,
:mod:`.losses`; :mod:`.generic` holds the layer-independent ones). A check recomputes what one
specific mistake would have produced and reports the mistake when the user's result matches that
candidate within the case's tolerance. ``refcheck.diagnose.diagnose`` is the entry point.
"""
from __future__ import annotations

from .context import Check, Context
from .conv import CONV2D_CHECKS
from .dense import LINEAR_CHECKS
from .generic import float32_arithmetic, mutation_message
from .losses import LOSS_CHECKS
from .pooling import POOLING_CHECKS

__all__ = ["Check", "Context", "checks_for", "mutation_message"]

_GENERIC: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_input", "grad_weight", "grad_bias"), float32_arithmetic),
]


def checks_for(layer: str) -> list[tuple[tuple[str, ...], Check]]:
    """The checks relevant to a layer, in the order they are tried: (tensors each applies to, check)."""
    if layer == "conv2d":
        return CONV2D_CHECKS
    if layer == "linear":
        return LINEAR_CHECKS
    if layer in POOLING_CHECKS:
        return POOLING_CHECKS[layer]
    if layer in ("mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy"):
        return LOSS_CHECKS
    return _GENERIC
