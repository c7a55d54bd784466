"""An in-process run (--workers 0) checks single-threaded, as the workers do, and gives the threads back."""
from __future__ import annotations

import torch
from threadpoolctl import threadpool_info

from refcheck.execution.runner import CheckOptions
from refcheck.execution.sweep import plan_sweep, run_plan


def _threads() -> tuple[int, list[int]]:
    return torch.get_num_threads(), [info["num_threads"] for info in threadpool_info()]


def test_workers_0_runs_with_one_thread_and_restores_the_counts():
    torch.set_num_threads(2)
    before = _threads()
    seen = []
    result = run_plan(plan_sweep(layers="conv2d", quick=True), CheckOptions(workers=0, oracle_cache=None),
                      on_case=lambda case, records: seen.append(_threads()))
    assert result.finished == result.total > 0
    assert all(torch_threads == 1 and set(blas) == {1} for torch_threads, blas in seen)
    assert _threads() == before
