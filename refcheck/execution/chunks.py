"""Chunks: consecutive cases of one layer sent to a worker as one task.

A case of a small layer takes about a millisecond; sending each on its own costs about as much
again in the pool's bookkeeping and inter-process traffic. So consecutive cases of a layer go
together, as many as fit in about :data:`TARGET_SECONDS` of that layer's slowest finished case.
A chunk never changes a verdict: when a chunk's task times out or its worker dies, its cases are
run again one by one (each with its own timeout and its own row), and that layer is not chunked
again. Until one of a layer's cases has finished, its chunks are small (at most :data:`FIRST`, and
one case alone when even that could be slow by the slowest case of any layer).
"""
from __future__ import annotations

from collections.abc import Sequence

from ..cases import Case
from .budget import TimeBudget

__all__ = ["ChunkSizer", "next_chunk"]

TARGET_SECONDS = 0.05
LARGEST = 32
FIRST = 4
"""At most this many cases of a layer none of whose cases has finished yet (its time is unknown)."""


class ChunkSizer:
    """How many cases of a layer the next task holds (1 when chunking is off or unsafe)."""

    def __init__(self, budget: TimeBudget, enabled: bool = True) -> None:
        self.budget = budget
        self.enabled = enabled
        self.unchunked: set[str] = set()

    def size(self, layer: str) -> int:
        if not self.enabled or layer in self.unchunked or self.budget.timeouts[layer]:
            return 1
        slowest = self.budget.slowest.get(layer, 0.0)
        if slowest <= 0.0:  # nothing of this layer has finished yet: judge by the slowest of any layer
            anywhere = max(self.budget.slowest.values(), default=0.0)
            return 1 if anywhere <= 0.0 else max(1, min(FIRST, int(TARGET_SECONDS / anywhere)))
        return max(1, min(LARGEST, int(TARGET_SECONDS / slowest)))

    def chunk_failed(self, layer: str) -> None:
        """A chunk of this layer hung or lost its worker: its cases, and the layer's next ones, go alone."""
        self.unchunked.add(layer)


def next_chunk(queue: Sequence[Case], position: int, size: int) -> list[Case]:
    """Up to ``size`` consecutive cases from ``position``, all of the first one's layer."""
    layer = queue[position].layer
    chunk = [queue[position]]
    while len(chunk) < size and position + len(chunk) < len(queue) and queue[position + len(chunk)].layer == layer:
        chunk.append(queue[position + len(chunk)])
    return chunk
