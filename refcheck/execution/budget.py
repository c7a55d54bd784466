"""Time budgets: a layer whose cases keep hanging must not cost the full timeout per case.

Every case starts with the full ``--timeout``. After a layer's first timeout, its remaining
cases get a budget of 20 times the slowest case of that layer that finished (or of any layer,
if none of its own has), at least 0.5 s and at most the full timeout: generous for cases that
finish, short for the ones that hang. While no case of any layer has finished, there is nothing
to scale: the budget halves with each of the layer's timeouts instead (down to 0.5 s), so that a
run whose only layer hangs on every case costs about twice the timeout per worker, not the
timeout per case. Each hanging case is still named in its own row.
"""
from __future__ import annotations

from collections import defaultdict

__all__ = ["TimeBudget"]

_FACTOR = 20.0
_FLOOR = 0.5


class TimeBudget:
    """Per-layer timeouts, shortened after a timeout (see the module docstring)."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.slowest: dict[str, float] = defaultdict(float)
        self.timeouts: dict[str, int] = defaultdict(int)

    def finished(self, layer: str, seconds: float) -> None:
        self.slowest[layer] = max(self.slowest[layer], float(seconds))

    def timed_out(self, layer: str, was_timeout: bool) -> None:
        if was_timeout:
            self.timeouts[layer] += 1

    def for_layer(self, layer: str) -> float | None:
        if self.timeout is None or not self.timeouts[layer]:
            return self.timeout
        basis = self.slowest[layer] or max(self.slowest.values(), default=0.0)
        if not basis:
            return max(_FLOOR, self.timeout / 2 ** self.timeouts[layer])
        return min(self.timeout, max(_FLOOR, _FACTOR * basis))

    def note(self, layer: str, budget: float | None) -> str:
        if budget is None or self.timeout is None or budget >= self.timeout:
            return ""
        rule = ("20x its slowest finished case" if self.slowest[layer] else
                "20x the slowest finished case of the run" if any(self.slowest.values()) else
                "halved with each timeout, no case having finished yet")
        return (f"; a shortened budget, since earlier cases of {layer} timed out: {rule} "
                f"(rerun this case with --case to give it the full --timeout {self.timeout:g} s)")
