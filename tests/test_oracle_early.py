"""torch's processes start before planning only when torch will surely be needed."""
from __future__ import annotations

from refcheck.execution.runner import CheckOptions, run_cases, start_oracle_early
from refcheck.execution.sweep import plan_sweep


def test_the_oracle_starts_early_for_an_empty_cache_and_its_results_fill_it(tmp_path):
    cache = tmp_path / "cache"
    assert start_oracle_early(0, str(cache)) is None  # in-process runs start nothing
    oracle = start_oracle_early(2, str(cache))
    assert oracle is not None
    try:
        cases = plan_sweep(layers="relu").cases
        early = run_cases(None, cases, CheckOptions(workers=2, oracle_cache=str(cache)), oracle_executor=oracle).records
    finally:
        oracle.shutdown()
    assert {r["status"] for r in early} == {"passed"} and len({r["case"] for r in early}) == len(cases)
    assert start_oracle_early(2, str(cache)) is None  # the cache has results now: torch may not be needed
    late = run_cases(None, cases, CheckOptions(workers=2, oracle_cache=str(cache))).records
    assert [(r["case"], r["tensor"], r["error_eps"]) for r in late] == [(r["case"], r["tensor"], r["error_eps"]) for r in early]
