"""Several cases per worker task: the verdicts are those of one case per task, and a case that
hangs or ends its worker inside a chunk still gets its own row."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from refcheck.cases import Case
from refcheck.cli import main
from refcheck.execution.budget import TimeBudget
from refcheck.execution.chunks import FIRST, LARGEST, ChunkSizer, next_chunk
from refcheck.execution.executors import ProcessExecutor
from refcheck.execution.runner import CheckOptions, run_cases
from refcheck.execution.sweep import plan_sweep

HOSTILE = Path(__file__).parent / "impls_hostile"


def _case(layer: str, number: int) -> Case:
    return Case(id=f"{layer}[{number}]", layer=layer, seed=number, shapes={}, hparams={}, values="normal",
                dtype="float64")


def test_a_chunk_holds_consecutive_cases_of_one_layer_only():
    queue = [_case("relu", i) for i in range(5)] + [_case("tanh", i) for i in range(3)]
    assert [c.id for c in next_chunk(queue, 0, 3)] == ["relu[0]", "relu[1]", "relu[2]"]
    assert [c.id for c in next_chunk(queue, 3, 10)] == ["relu[3]", "relu[4]"]
    assert [c.id for c in next_chunk(queue, 5, 1)] == ["tanh[0]"]


def test_chunk_sizes_follow_the_layers_slowest_case_and_stop_after_trouble():
    budget = TimeBudget(60.0)
    sizer = ChunkSizer(budget)
    assert sizer.size("relu") == 1  # nothing finished anywhere yet: the time of its cases is unknown
    budget.finished("relu", 0.001)
    assert sizer.size("relu") == min(LARGEST, 50)
    assert sizer.size("tanh") == FIRST  # not finished yet: a small chunk, judged by the other layers
    budget.finished("conv2d", 2.0)
    assert sizer.size("conv2d") == 1
    assert sizer.size("tanh") == 1  # a slow layer elsewhere: a layer of unknown time goes one by one
    sizer.chunk_failed("relu")
    assert sizer.size("relu") == 1
    assert ChunkSizer(budget, enabled=False).size("tanh") == 1


def test_while_nothing_has_finished_a_layers_budget_halves_with_each_timeout():
    budget = TimeBudget(8.0)
    assert budget.for_layer("relu") == 8.0
    budgets = []
    for _ in range(6):
        budget.timed_out("relu", True)
        budgets.append(budget.for_layer("relu"))
    assert budgets == [4.0, 2.0, 1.0, 0.5, 0.5, 0.5]
    assert "halved with each timeout" in budget.note("relu", 0.5)
    budget.finished("tanh", 0.1)  # something finished: 20x the slowest finished case of the run
    assert budget.for_layer("relu") == 2.0 and "slowest finished case of the run" in budget.note("relu", 2.0)
    budget.finished("relu", 0.01)
    assert budget.for_layer("relu") == 0.5 and "20x its slowest finished case" in budget.note("relu", 0.5)
    assert budget.for_layer("tanh") == 8.0 and budget.note("tanh", 8.0) == ""


class CountingExecutor:
    """A process pool that counts the tasks it was given."""

    def __init__(self) -> None:
        self.pool = ProcessExecutor(2, 60.0)
        self.capacity = 2
        self.tasks = 0

    def submit(self, fn, /, *args, timeout=None, **kwargs):
        self.tasks += 1
        return self.pool.submit(fn, *args, timeout=timeout, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.pool.shutdown(wait, cancel_futures=cancel_futures)


def test_chunked_verdicts_equal_one_case_per_task():
    cases = plan_sweep(layers="relu,tanh,linear").cases
    executor = CountingExecutor()
    try:
        chunked = run_cases(None, cases, CheckOptions(workers=2), executor=executor).records
    finally:
        executor.shutdown()
    alone = run_cases(None, cases, CheckOptions(workers=0)).records
    assert executor.tasks < len(cases) / 2  # the cases did share tasks
    columns = ["case", "tensor", "status", "reason", "error_eps", "max_abs_error", "selfcheck_error"]
    assert pd.DataFrame(chunked)[columns].equals(pd.DataFrame(alone)[columns])


@pytest.mark.parametrize("module, reason", [("late_hang", "timeout: the case did not finish within"),
                                            ("late_exit", "worker died: the process running the case exited with code 3")])
def test_a_case_that_hangs_or_ends_its_worker_inside_a_chunk_gets_its_own_row(tmp_path, module, reason):
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(HOSTILE / f"{module}.py"), "--layers", "relu", "--out", str(out),
                 "--timeout", "3", "--no-selfcheck", "--no-plots"])
    frame = pd.read_csv(out / "cases.csv")
    per_case = frame.groupby("case", sort=False).first()
    troubled = per_case[per_case.index.str.startswith("relu[7-tiny")]
    assert code == 1
    assert len(troubled) == 2 and set(troubled["status"]) == {"error"}
    assert troubled["reason"].str.startswith(reason).all()
    if module == "late_hang":
        # The chunk's timeout does not say which case hung: the first to hang alone has the full
        # --timeout (only the cases after it get a shortened budget, and say so).
        assert troubled["reason"].iloc[0] == "timeout: the case did not finish within 3 s (the worker was stopped)"
    others = per_case.drop(troubled.index)
    assert len(others) == 28 and set(others["status"]) == {"passed"}


def _worker_pid() -> int:
    import os

    return os.getpid()


def _echo(value: int) -> int:
    return value


def test_a_worker_that_dies_while_idle_costs_a_new_pool_not_the_sweep():
    # pebble gives up on a pool whose worker dies while it knows of no task running there (killed
    # while idle, or dead before its task's start was heard of); the executor starts a new one.
    import os
    import signal
    import time

    from refcheck.execution.executors import _broken

    executor = ProcessExecutor(1, 30.0)
    try:
        os.kill(executor.submit(_worker_pid).result(), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not _broken(executor.pool) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _broken(executor.pool)  # what pebble does by itself: it would schedule nothing more
        assert executor.submit(_echo, 5).result(timeout=30) == 5
        assert executor.restarts == 1 and executor.submit(_echo, 6).result(timeout=30) == 6
    finally:
        executor.shutdown(cancel_futures=True)


class GivesUpOnce:
    """Runs tasks here, except that the first ``broken`` tasks end as a pool that gave up ends them."""

    def __init__(self, broken: int) -> None:
        self.broken, self.tasks = broken, 0

    def submit(self, fn, /, *args, timeout=None, **kwargs):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        self.tasks += 1
        future = Future()
        if self.tasks <= self.broken:
            future.set_exception(BrokenProcessPool("All workers expired"))
        else:
            future.set_result(fn(*args, **kwargs))
        return future

    def shutdown(self, wait=True, *, cancel_futures=False):
        return None


@pytest.mark.parametrize("broken", [1, 3])
def test_cases_in_flight_when_the_pool_gives_up_run_again_and_keep_their_verdicts(broken):
    from refcheck.execution.executors import InlineExecutor

    cases = plan_sweep(layers="relu").cases[:12]
    executor = GivesUpOnce(broken)
    records = run_cases(None, cases, CheckOptions(workers=2), executor=executor,
                        oracle_executor=InlineExecutor()).records
    assert executor.tasks > broken
    assert {r["case"] for r in records} == {c.id for c in cases}
    assert {r["status"] for r in records} == {"passed"}


def test_a_case_whose_pool_gives_up_twice_is_reported_as_its_worker_dying():
    from refcheck.execution.executors import InlineExecutor
    from refcheck.execution.runner import CaseChecker

    case = plan_sweep(layers="relu").cases[0]
    checker = CaseChecker(None, CheckOptions(workers=1), executor=GivesUpOnce(2), oracle_executor=InlineExecutor())
    records = checker.records(checker.submit(case))
    assert {r["status"] for r in records} == {"error"}
    assert records[0]["reason"].startswith("worker died: a worker process ended while the case ran, twice")
