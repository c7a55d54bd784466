"""torch's processes start before planning only when torch will surely be needed, and otherwise
before the sweep's first task when the cache lacks a case (never while the user's code runs)."""
from __future__ import annotations

from refcheck.execution.oracle_pool import start_oracle_early
from refcheck.execution.runner import CheckOptions, run_cases
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


def test_a_sweep_whose_cache_lacks_a_case_starts_the_oracle_before_its_first_task(tmp_path, monkeypatch):
    import refcheck.execution.runner as runner

    cache = tmp_path / "cache"
    cases = plan_sweep(layers="relu", quick=True).cases
    run_cases(None, cases[:2], CheckOptions(workers=2, oracle_cache=str(cache)))  # the cache holds two cases
    started = []
    real = runner.start_oracle
    monkeypatch.setattr(runner, "start_oracle", lambda workers: started.append(workers) or real(workers))
    assert {r["status"] for r in run_cases(None, cases[:2], CheckOptions(workers=2, oracle_cache=str(cache))).records} \
        == {"passed"}
    assert started == []  # every case cached: no torch
    records = run_cases(None, cases, CheckOptions(workers=2, oracle_cache=str(cache))).records
    assert started == [2] and {r["status"] for r in records} == {"passed"}


def test_the_results_of_an_oracle_started_again_during_the_run_are_refused():
    # A worker can kill an oracle process (same user) and race its replacement's start-up for its pipes.
    import os
    import signal
    import time

    from refcheck.execution.oracle_pool import start_oracle

    oracle = start_oracle(2)
    try:
        os.kill(oracle.worker_pids()[0], signal.SIGKILL)
        time.sleep(1)  # pebble gives up on a pool whose idle worker died: a new one starts at the next task
        cases = plan_sweep(layers="relu", quick=True).cases
        records = run_cases(None, cases, CheckOptions(workers=1, oracle_cache=None), oracle_executor=oracle).records
    finally:
        oracle.shutdown(cancel_futures=True)
    assert {r["status"] for r in records} == {"error"}
    assert all("torch's processes were started again during the run" in r["reason"] for r in records)


def test_a_stopped_oracle_ends_in_error_rows_not_a_run_that_never_ends(monkeypatch):
    import os
    import signal

    import refcheck.execution.runner as runner
    from refcheck.execution.oracle_pool import start_oracle

    monkeypatch.setattr(runner, "ORACLE_TIMEOUT", 3.0)
    oracle = start_oracle(1)
    try:
        for pid in oracle.worker_pids():
            os.kill(pid, signal.SIGSTOP)
        cases = plan_sweep(layers="relu", quick=True).cases[:2]
        records = run_cases(None, cases, CheckOptions(workers=1, oracle_cache=None), oracle_executor=oracle).records
    finally:
        for pid in oracle.worker_pids():
            os.kill(pid, signal.SIGKILL)
        oracle.shutdown(cancel_futures=True)
    assert {r["status"] for r in records} == {"error"}
    assert all("torch's process did not answer within 3 s" in r["reason"] for r in records)
