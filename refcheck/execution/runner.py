"""Running cases: the implementation in its workers, the oracle on the trusted side, the verdicts here.

:class:`CaseChecker` submits a case's implementation task to the implementation executor (a
process that never holds a reference), takes torch's results from the oracle cache or the trusted
oracle executor, and judges the case here (compare, self-check columns, diagnosis). Hangs and
dead workers become error rows (:mod:`.failures`); a layer whose cases keep timing out gets a
much shorter budget for the rest of its cases. :func:`run_cases` streams a whole sweep through it.
"""
from __future__ import annotations

import concurrent.futures
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from ..cases import Case
from ..compare import TensorComparison, status_records
from ..compare.batch import TensorItem, compare_passing
from ..oracle import OracleCache
from ..report.stream import RecordStream
from .budget import TimeBudget
from .chunks import ChunkSizer, next_chunk
from .executors import ORACLE_TIMEOUT, Executor, InlineExecutor, ProcessExecutor
from .failures import failure_records, pool_lost, worker_died
from .frameworks import MappedFrameworks
from .judge import judge, judged_tensors
from .limits import default_memory_limit, format_size
from .options import CheckOptions
from .oracle_pool import start_oracle
from .pending import OracleFailure, Pending, SweepResult, compute_references
from .result_schema import malformed
from .worker import rerun_implementation, run_implementation, run_implementations

__all__ = ["CaseChecker", "CheckOptions", "SweepResult", "failure_records", "run_cases"]

_REAP_SECONDS = 1.0  # how often a sweep waiting on its workers looks for a pool that gave up

Record = dict[str, Any]


def _one_blas_thread() -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _implementation_executor(options: CheckOptions) -> Executor:
    if options.dask:
        from .dask_executor import DaskExecutor

        return DaskExecutor(options.dask, options.timeout, workers=max(1, options.workers),
                            memory_limit=options.memory_limit)
    if options.workers == 0:
        return InlineExecutor()
    return ProcessExecutor(options.workers, options.timeout, kind="implementation", memory_limit=options.memory_limit)


class CaseChecker:
    """Checks cases of one implementation: submit, then collect the records of each."""

    def __init__(self, reference: str | None, options: CheckOptions | None = None, *,
                 executor: Executor | None = None, oracle_executor: Executor | None = None) -> None:
        self.reference = reference
        self.options = options = options or CheckOptions()
        inline = options.workers == 0 and not options.dask
        if options.memory_limit is None and not inline:
            options.memory_limit = default_memory_limit(options.workers)
        self._own_executor = executor is None
        self.executor = executor or _implementation_executor(options)
        self._oracle_executor = oracle_executor or (InlineExecutor() if inline else None)
        self._own_oracle = oracle_executor is None and not inline
        self.cache = OracleCache(options.oracle_cache)
        self.budget = TimeBudget(options.timeout)
        self._frameworks = MappedFrameworks()  # seen mapped in the workers, from here
        # In this process, the cases run single-threaded as in the workers (restored by close).
        self._torch_threads: int | None = None
        self._blas_limits = None
        if isinstance(self.executor, InlineExecutor):
            if "torch" in sys.modules:  # already loaded: note its count before its OpenMP is limited below
                from ..oracle import use_one_thread

                self._torch_threads = use_one_thread()
            self._blas_limits = _one_blas_thread()

    @property
    def oracle_executor(self) -> Executor:
        if self._oracle_executor is None:  # started on the first cache miss: a warm cache needs no torch
            self._oracle_executor = ProcessExecutor(max(1, self.options.workers), None, kind="oracle")
        return self._oracle_executor

    def submit(self, case: Case) -> Pending:
        return self.submit_chunk([case])[0]

    def submit_chunk(self, cases: list[Case]) -> list[Pending]:
        """Consecutive cases of one layer as one implementation task, and one oracle task for those
        the cache lacks. In-process, each case runs when submitted and its reference is computed
        only when asked for (after the implementation has run, since both share this process)."""
        if isinstance(self.executor, InlineExecutor):
            return [Pending(case, self._submit_implementation(run_implementation, case, case.layer), None,
                            cached=self.cache.load(case)) for case in cases]
        future = self._submit_implementation(run_implementations, cases, cases[0].layer)
        timeout = self.budget.for_layer(cases[0].layer)
        pendings = [Pending(case, future, timeout, cached=cached, index=i)
                    for i, (case, cached) in enumerate(zip(cases, self.cache.load_many(cases)))]
        missed = [p for p in pendings if p.cached is None]
        if missed:
            oracle = self.oracle_executor.submit(compute_references, [p.case for p in missed], self.options.oracle_cache)
            for i, pending in enumerate(missed):
                pending.oracle, pending.oracle_index = oracle, i
        return pendings

    def _submit_implementation(self, function: Callable[..., Any], cases: Case | list[Case], layer: str) -> Future:
        return self.executor.submit(function, self.reference, cases, timeout=self.budget.for_layer(layer),
                                    selfcheck=self.options.selfcheck, forward_only=self.options.forward_only,
                                    map_path=self.options.map_path)

    def _reference(self, pending: Pending) -> tuple[dict, dict]:
        if pending.cached is not None:
            return pending.cached
        if pending.oracle is None:  # in-process: computed now
            if isinstance(self.oracle_executor, InlineExecutor) and self._torch_threads is None:
                from ..oracle import use_one_thread

                self._torch_threads = use_one_thread()
            pending.oracle = self.oracle_executor.submit(compute_references, [pending.case], self.options.oracle_cache)
            pending.oracle_index = 0
        answers = self._answer(pending.oracle, limit=ORACLE_TIMEOUT)
        replaced = getattr(self._oracle_executor, "replaced", lambda: False)()
        if replaced:  # a process started while the user's code ran: its pipes were open to that code
            raise OracleFailure("torch's processes were started again during the run (one was killed or died), "
                                "while the code under test was running beside them: their results are not "
                                "trusted; run again")
        outcome, reference, at_dtype = answers[pending.oracle_index]
        if outcome != "ok":
            raise OracleFailure(reference)
        self.cache.remember(pending.case, reference, at_dtype)
        return reference, at_dtype

    def records(self, pending: Pending) -> list[Record]:
        """The case's records (waits for its tasks)."""
        return self.chunk_records([pending])[0]

    def chunk_records(self, pendings: Sequence[Pending]) -> list[list[Record]]:
        """The records of each case (waits for their tasks). The tensors that plainly pass are
        compared together, in a few vectorized calls (see :mod:`refcheck.compare.batch`)."""
        self._look_for_frameworks()
        outcomes = [self._outcome(pending) for pending in pendings]
        ahead = self._compared_ahead(pendings, outcomes)
        return [outcome if isinstance(outcome, list) else self._judged_safely(pending, *outcome, comparisons)
                for pending, outcome, comparisons in zip(pendings, outcomes, ahead)]

    def _judged_safely(self, pending: Pending, raw: dict[str, Any], reference: Any, at_dtype: Any,
                       comparisons: dict[str, TensorComparison]) -> list[Record]:
        """:meth:`_judged`, with whatever the worker's result makes it raise as the case's error."""
        try:
            return self._judged(pending, raw, reference, at_dtype, comparisons)
        except Exception as error:  # noqa: BLE001 - a result shaped by the code under test
            return status_records(pending.case, "error", f"the worker's result for this case cannot be judged "
                                                         f"({type(error).__name__}: {error})")

    def _outcome(self, pending: Pending) -> list[Record] | tuple[dict[str, Any], Any, Any]:
        """The case's records when it failed before judging (its worker, the oracle), else what
        judging needs: the worker's result, the float64 reference and torch's result at the dtype."""
        case = pending.case
        try:
            raw = pending.raw(self._answer)
        except (Exception, KeyboardInterrupt) as error:
            if pool_lost(error) and not pending.run_again:
                # The pool gave up with this case in flight, whoever's worker died: run it again, alone.
                pending.implementation = self._submit_implementation(run_implementations, [case], case.layer)
                pending.index, pending.run_again = 0, True
                return self._outcome(pending)
            self.budget.timed_out(case.layer, isinstance(error, (concurrent.futures.TimeoutError, TimeoutError)))
            return failure_records(case, error, pending.timeout, self._failure_note(error, pending))
        wrong = malformed(raw, case.id)
        if wrong:  # the code under test replaced what its worker sends: this case's error, not the run's
            return status_records(case, "error", f"the worker's result for this case cannot be read ({wrong}): "
                                                 "the code under test changed what refcheck's worker sends back")
        self.budget.finished(case.layer, raw.get("user_seconds", 0.0))
        if self._frameworks.found and raw.get("status") == "ran":
            raw["frameworks"] = sorted(set(raw.get("frameworks", [])) | self._frameworks.found)
        reference = at_dtype = None
        if raw["status"] == "ran":
            try:
                reference, at_dtype = self._reference(pending)
            except Exception as error:  # the trusted side failed: say so, never blame the implementation
                detail = str(error) if isinstance(error, OracleFailure) else f"{type(error).__name__}: {error}"
                return status_records(case, "error", f"internal error: the oracle failed: {detail}")
        return raw, reference, at_dtype

    def _answer(self, future: Future, limit: float | None = None) -> Any:
        """``future.result()``, looking every _REAP_SECONDS for a pool that gave up (a task it holds
        would never be answered); past ``limit`` seconds, a TimeoutError (a task whose process was
        stopped is never started, so the pool's own timeout never runs)."""
        deadline = None if limit is None else time.monotonic() + limit
        while not future.done():
            concurrent.futures.wait([future], timeout=_REAP_SECONDS)
            if not future.done():
                self.reap_broken()
            if not future.done() and deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"torch's process did not answer within {limit:g} s")
        return future.result()

    def reap_broken(self) -> None:
        """Fail the tasks of a pool that gave up, and start a new one (see ProcessExecutor)."""
        for executor in (self.executor, self._oracle_executor):
            getattr(executor, "reap_broken", lambda: None)()

    def _look_for_frameworks(self) -> None:
        """Frameworks mapped into the implementation's workers, seen from here (their own check can
        be switched off by the code under test). Once one is seen, every case judged after it has it."""
        pids = getattr(self.executor, "worker_pids", None)
        if pids is not None:
            self._frameworks.look(pids())

    def _compared_ahead(self, pendings: Sequence[Pending], outcomes: list) -> list[dict[str, TensorComparison]]:
        """Per case, the comparisons of its tensors that plainly pass, made for all cases at once."""
        items: list[TensorItem] = []
        owners: list[tuple[int, str]] = []
        for position, (pending, outcome) in enumerate(zip(pendings, outcomes)):
            if isinstance(outcome, list) or outcome[0]["status"] != "ran":
                continue
            if outcome[0]["frameworks"] and not self.options.allow_frameworks:  # such a case fails unjudged
                continue
            raw, reference, at_dtype = outcome
            case = pending.case
            for tensor in judged_tensors(case, self.options.forward_only):
                items.append(TensorItem(raw["results"].get(tensor), reference.get(tensor), at_dtype.get(tensor),
                                        case.dtype, case.tolerance_map))
                owners.append((position, tensor))
        ahead: list[dict[str, TensorComparison]] = [{} for _ in pendings]
        try:
            passing = compare_passing(items)
        except Exception:  # noqa: BLE001 - a result the vectorized path cannot take: each is judged alone
            passing = [None] * len(items)
        for (position, tensor), comparison in zip(owners, passing):
            if comparison is not None:
                ahead[position][tensor] = comparison
        return ahead

    def _judged(self, pending: Pending, raw: dict[str, Any], reference: Any, at_dtype: Any,
                comparisons: dict[str, TensorComparison]) -> list[Record]:
        case = pending.case
        records = judge(case, raw, reference, at_dtype, rerun=self._rerun(case),
                        diagnose_failures=self.options.diagnose, allow_frameworks=self.options.allow_frameworks,
                        forward_only=self.options.forward_only, comparisons=comparisons)
        self._note_memory(records)
        for record in records:
            record["duration_s"] = raw.get("user_seconds", 0.0)
        return records

    def _rerun(self, case: Case) -> Callable[[dict, dict], dict]:
        def rerun(tensors: dict, gradients: dict) -> dict:
            future = self.executor.submit(rerun_implementation, self.reference, case, tensors, gradients,
                                          self.options.map_path, timeout=self.budget.for_layer(case.layer))
            return future.result()
        return rerun

    def _failure_note(self, error: BaseException, pending: Pending) -> str:
        import pebble

        note = self.budget.note(pending.case.layer, pending.timeout)
        killed = isinstance(error, pebble.ProcessExpired) and error.exitcode == -9
        if killed and self.options.memory_limit:  # a C extension may die instead of raising MemoryError
            note += f"; the memory limit is {format_size(self.options.memory_limit)} per worker (--memory-limit)"
        return note

    def _note_memory(self, records: list[Record]) -> None:
        if not self.options.memory_limit:
            return
        for record in records:
            if "MemoryError" in str(record.get("reason", "")):
                record["reason"] += (f" (memory limit {format_size(self.options.memory_limit)} per worker; "
                                     "raise it with --memory-limit)")

    def close(self, cancel: bool = False) -> None:
        """Stop the executors this checker started (``cancel``: without waiting for running tasks);
        give this process back the threads an in-process run took away."""
        if self._blas_limits is not None:
            self._blas_limits.restore_original_limits()
            self._blas_limits = None
        if self._torch_threads is not None:
            from ..oracle import set_torch_threads

            set_torch_threads(self._torch_threads)
            self._torch_threads = None
        if self._own_executor:
            self.executor.shutdown(wait=not cancel, cancel_futures=cancel)
        if self._own_oracle and self._oracle_executor is not None:
            self._oracle_executor.shutdown(wait=not cancel, cancel_futures=cancel)


def run_cases(reference: str | None, cases: Sequence[Case], options: CheckOptions | None = None, *,
              executor: Executor | None = None, on_case: Callable[[Case, list[Record]], None] | None = None,
              stream: RecordStream | None = None, oracle_executor: Executor | None = None) -> SweepResult:
    """Run every case; each finished case is reported to ``on_case`` as soon as it completes.

    With a ``stream``, each finished case's records are appended to it instead of being kept here,
    so memory does not grow with the sweep.

    A bounded window of cases is in flight at once (each submitted with the budget its layer has
    then). Ctrl-C stops the workers and returns what has finished, with ``interrupted=True``.
    """
    options = options or CheckOptions()
    started = None
    if (oracle_executor is None and executor is None and options.workers > 0 and cases
            and (options.oracle_cache is None or OracleCache(options.oracle_cache).any_missing(list(cases)))):
        # torch will be needed: its processes start before the implementation's workers do.
        oracle_executor = started = start_oracle(options.workers)
    try:
        return _run_cases(reference, cases, options, executor, on_case, stream, oracle_executor)
    finally:
        if started is not None:  # every case is judged (or the run was stopped): nothing left to wait for
            started.shutdown(cancel_futures=True)


def _run_cases(reference: str | None, cases: Sequence[Case], options: CheckOptions, executor: Executor | None,
               on_case: Callable[[Case, list[Record]], None] | None, stream: RecordStream | None,
               oracle_executor: Executor | None) -> SweepResult:
    checker = CaseChecker(reference, options, executor=executor, oracle_executor=oracle_executor)
    window = max(2, 2 * getattr(checker.executor, "capacity", checker.options.workers) + 2)
    sizer = ChunkSizer(checker.budget, enabled=not isinstance(checker.executor, InlineExecutor))
    by_case: dict[str, list[Record]] = {}
    interrupted = False
    queue = list(cases)
    again: list[Case] = []  # the cases of a chunk that hung or lost its worker, to run one by one
    confirmed: set[str] = set()  # cases run again alone after their worker died
    in_flight: dict[Future, list[Pending]] = {}
    position = 0

    def collect(pending: Pending, records: list[Record]) -> None:
        if stream is not None:
            stream.add(pending.case.id, pending.case.layer, records)
        else:
            by_case[pending.case.id] = records
        if on_case is not None:
            on_case(pending.case, records)

    def finished(future: Future) -> None:
        pendings = in_flight.pop(future)
        error = None if future.cancelled() else future.exception()
        if error is not None and len(pendings) > 1:
            layer = pendings[0].case.layer
            # Which of its cases hung is not known yet: the layer's budget is shortened only when a
            # case run alone times out, so that the one that hung is reported with the full timeout.
            sizer.chunk_failed(layer)
            again.extend(p.case for p in pendings)
            return
        if worker_died(error) and pendings[0].case.id not in confirmed:
            # The pool names the task of a worker that died by the worker's process; when another
            # worker dies at the same moment it can name the wrong one. A case is only reported
            # as having ended its worker when it does so again, alone.
            confirmed.add(pendings[0].case.id)
            again.append(pendings[0].case)
            return
        for pending, records in zip(pendings, checker.chunk_records(pendings)):
            collect(pending, records)

    try:
        while position < len(queue) or in_flight or again:
            while (again or position < len(queue)) and len(in_flight) < window:
                if again:
                    chunk = [again.pop(0)]
                else:
                    chunk = next_chunk(queue, position, sizer.size(queue[position].layer))
                    position += len(chunk)
                pendings = checker.submit_chunk(chunk)
                if isinstance(checker.executor, InlineExecutor):
                    for pending in pendings:  # ran inside submit: kept before a Ctrl-C can lose it
                        collect(pending, checker.records(pending))
                else:
                    in_flight[pendings[0].implementation] = pendings
            if not in_flight:
                continue
            done, _ = concurrent.futures.wait(list(in_flight), timeout=_REAP_SECONDS,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            if not done:  # a pool that gave up answers nothing more: what it held fails, to be run again
                checker.reap_broken()
            for future in done:
                finished(future)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        checker.close(cancel=interrupted)
    if stream is not None:
        stream.set_order(case.id for case in cases)
        return SweepResult([], interrupted, stream.cases, len(cases), stream)
    ordered = [record for case in cases if case.id in by_case for record in by_case[case.id]]
    return SweepResult(ordered, interrupted, len(by_case), len(cases))
