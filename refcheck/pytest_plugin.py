"""pytest plugin: `pytest --refcheck-impl PATH` turns refcheck cases into collected tests.

Usage, in any folder (no test files needed)::

    pytest --refcheck-impl my_layers.py [--refcheck-layers conv2d,relu] [--refcheck-cases DIR]
           [--refcheck-quick] [--refcheck-dtype D,D] [--refcheck-seed N] [--refcheck-timeout S]
           [--refcheck-workers N] [--junitxml report.xml]

Each case of the sweep (:func:`refcheck.execution.sweep.plan_sweep`) becomes one test item whose name is
the case id, under ``refcheck/<layer>``: ``refcheck/conv2d::conv2d[s2-p1-d2-g1-k3x3-2x4x9x7-o6-f32]``.
Select cases with ``-k`` (``-k "conv2d and f32"``). A case runs exactly as in ``refcheck run``
(:class:`refcheck.execution.runner.CaseChecker`) in worker processes, so a crash or a hang of the implementation
fails only that test. passed -> pass; failed or error -> failure with an
``assert_close``-like message and the ``refcheck run`` command reproducing the case; skipped
(not implemented, unsupported hyperparameter) -> skip with the reason.

Without ``--refcheck-impl`` the plugin only registers its options. torch, pandas and the rest of
refcheck are imported inside the hooks, once the option is given, so loading the plugin is cheap.
"""
from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # loaded on first use (module __getattr__ below): importing the plugin stays cheap
    from .report.failure_text import case_outcome, failure_message

__all__ = ["RefcheckCase", "RefcheckFuzz", "RefcheckLayer", "RefcheckOptions", "RefcheckSweep", "case_outcome",
           "failure_message", "reproduce_command"]

Record = Mapping[str, Any]

DEFAULT_TIMEOUT = 60.0
"""Seconds per case, as ``refcheck run --timeout``; the repro command names other values."""

_OPTION = re.compile(r"(?<![\w-])--(impl|layers|cases|dtype|seed|timeout|workers|map|forward-only)\b")


@dataclass(frozen=True)
class RefcheckOptions:
    """The ``--refcheck-*`` options of one pytest run."""

    impl: str
    layers: str | None = None
    cases: str | None = None
    quick: bool = False
    timeout: float = DEFAULT_TIMEOUT
    workers: int = 2
    shared: Mapping[str, Any] = field(default_factory=dict)  # the other shared checking options, by dest
    map: str | None = None
    forward_only: bool = False
    dtype: str | None = None
    seed: int = 0
    fuzz: int = 0  # examples per layer of the one hypothesis test added per layer (0: none)


@dataclass
class _SweepState:
    """Per-run state in ``config.stash``: the plan, the pool (started by the first case) and the
    futures of the cases submitted ahead of the one pytest is running."""

    options: RefcheckOptions
    plan: Any = None
    executor: Any = None
    futures: dict[str, Any] = field(default_factory=dict)
    order: dict[str, int] | None = None


_STATE = pytest.StashKey[_SweepState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("refcheck", "refcheck: check numpy layer implementations against torch.autograd")
    group.addoption("--refcheck-impl", metavar="MODULE_OR_PATH", default=None,
                    help="collect one test per refcheck case for this implementation (module name or .py path); "
                         "without it the plugin does nothing")
    group.addoption("--refcheck-layers", metavar="A,B", default=None,
                    help="only these layers (default: every layer the implementation has)")
    group.addoption("--refcheck-cases", metavar="DIR", default=None,
                    help="folder of case files (default: refcheck's built-in cases)")
    group.addoption("--refcheck-quick", action="store_true", default=False,
                    help="a subset of the full sweep holding the same value and pairwise coverage")
    group.addoption("--refcheck-dtype", metavar="D,D", default=None,
                    help="only these dtypes: float32, float64 (default: both)")
    group.addoption("--refcheck-seed", metavar="N", type=int, default=0,
                    help="base seed of the generated inputs (default: 0)")
    group.addoption("--refcheck-fuzz", metavar="N", default=None,
                    help="add one test per layer that draws N cases with hypothesis (as `refcheck fuzz`) and "
                         "fails with the smallest failing case")
    from .execution.options import OPTIONS  # the options `refcheck run` has too, defined once

    for option in OPTIONS:
        if option.parse is None:
            group.addoption(f"--refcheck-{option.name}", action="store_true", default=False, help=option.help)
        else:
            group.addoption(f"--refcheck-{option.name}", metavar=option.metavar, default=option.default,
                            help=option.help)


def _options(config: pytest.Config) -> RefcheckOptions | None:
    impl = config.getoption("refcheck_impl")
    if not impl:
        return None
    from .execution.options import OPTIONS, parse_value

    values = {}
    for option in OPTIONS:
        try:
            values[option.dest] = parse_value(option, config.getoption(f"refcheck_{option.dest}"))
        except ValueError as error:
            raise pytest.UsageError(str(error).replace("--", "--refcheck-", 1)) from None
    fuzz = config.getoption("refcheck_fuzz")
    if fuzz is not None and (not str(fuzz).isdigit() or int(fuzz) < 1):
        raise pytest.UsageError(f"--refcheck-fuzz: expected a whole number of 1 or more, got {fuzz!r}")
    return RefcheckOptions(impl=impl, layers=config.getoption("refcheck_layers"),
                           cases=config.getoption("refcheck_cases"), quick=config.getoption("refcheck_quick"),
                           timeout=values["timeout"], workers=values["workers"], shared=values,
                           map=values["map"], forward_only=values["forward_only"],
                           dtype=config.getoption("refcheck_dtype"), seed=config.getoption("refcheck_seed"),
                           fuzz=int(fuzz or 0))


def pytest_configure(config: pytest.Config) -> None:
    options = _options(config)
    if options is None:
        return
    config.addinivalue_line("markers", "refcheck: a refcheck case (collected by --refcheck-impl)")
    config.stash[_STATE] = _SweepState(options)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None and state.executor is not None:
        # Every case pytest ran has its result; whatever is still queued (-x, Ctrl-C) is dropped.
        state.executor.close(cancel=True)
        state.executor = None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector
                               ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Hang the sweep under the session: it needs no file, so no file-collection hook would see it."""
    report = yield
    if isinstance(collector, pytest.Session) and _STATE in collector.config.stash and report.passed:
        report.result.append(RefcheckSweep.from_parent(collector, name="refcheck", nodeid="refcheck"))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Skips are located at the layer (``refcheck/linear``), not at the line of this file that raised
    them, so the short summary folds them per layer."""
    report = yield
    if isinstance(item, RefcheckCase) and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (str(item.path / "refcheck" / item.case.layer), None, report.longrepr[2])
    return report


def pytest_report_collectionfinish(config: pytest.Config, items: Sequence[pytest.Item]) -> list[str]:
    state = config.stash.get(_STATE, None)
    if state is None or state.plan is None or not state.plan.cases:
        return []
    plan = state.plan
    chosen = sum(isinstance(item, RefcheckCase) for item in items)
    line = f"refcheck: {chosen} of {len(plan.cases)} cases for {plan.implementation.name}"
    if plan.not_implemented:
        line += f" (not implemented: {', '.join(plan.not_implemented)})"
    return [line]


class RefcheckSweep(pytest.Collector):
    """The sweep: plans the cases and yields one collector per layer."""

    def collect(self) -> Iterator[RefcheckLayer]:
        from .specs import RefcheckError
        from .execution.planning import no_cases_message, plan_isolated
        from .execution.sweep import layers_of

        state = self.config.stash[_STATE]
        options = state.options
        try:
            state.plan = plan_isolated(options.impl, options.layers, options.cases, dtypes=options.dtype,
                                       quick=options.quick, seed=options.seed, map_path=options.map,
                                       forward_only=options.forward_only, isolate=options.workers > 0)
        except RefcheckError as error:
            # The core names its command-line options; here they are spelled --refcheck-*.
            raise self.CollectError(_OPTION.sub(r"--refcheck-\1", f"refcheck: {error}")) from None
        if not state.plan.cases:
            raise self.CollectError(f"refcheck: {no_cases_message(state.plan)}")
        for layer in layers_of(state.plan.cases):
            cases = [case for case in state.plan.cases if case.layer == layer]
            yield RefcheckLayer.from_parent(self, name=layer, nodeid=f"refcheck/{layer}", cases=cases)


class RefcheckLayer(pytest.Collector):
    """The cases of one layer (node id ``refcheck/<layer>``)."""

    def __init__(self, *, cases: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cases = list(cases)

    def collect(self) -> Iterator[pytest.Item]:
        for case in self.cases:
            yield RefcheckCase.from_parent(self, name=case.id, nodeid=f"{self.nodeid}::{case.id}", case=case)
        if self.config.stash[_STATE].options.fuzz:
            yield RefcheckFuzz.from_parent(self, name="fuzz", nodeid=f"{self.nodeid}::fuzz", layer=self.name)


class RefcheckFuzz(pytest.Item):
    """A hypothesis search of one layer (``refcheck/<layer>::fuzz``), as ``refcheck fuzz`` runs it."""

    def __init__(self, *, layer: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer = layer
        self.add_marker("refcheck")

    def runtest(self) -> None:
        from hypothesis.database import DirectoryBasedExampleDatabase

        from .cases import load_spaces
        from .execution.fuzz import fuzz_layer
        from .report.failure_text import failure_message

        state = self.config.stash[_STATE]
        options = state.options
        space = load_spaces(options.cases, [self.layer])[0]
        database = DirectoryBasedExampleDatabase(str(self.config.rootpath / ".refcheck" / "hypothesis"))
        outcome = fuzz_layer(_checker(state), space, max_examples=options.fuzz, database=database,
                             database_key=state.plan.implementation.name)
        if outcome.failure is not None:
            failure = outcome.failure
            command = reproduce_command(options, self.layer, failure.drawn.case.id, where=failure.where,
                                        seed=failure.drawn.base_seed)
            header = (f"smallest failing case after {outcome.progress.examples} examples "
                      f"({outcome.progress.shrinks} shrinks): {failure.drawn.case.id}\n")
            pytest.fail(header + failure_message(failure.records, command), pytrace=False)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"fuzz[{self.layer}]"


class RefcheckCase(pytest.Item):
    """One case; its name is the case id."""

    def __init__(self, *, case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.add_marker("refcheck")

    def runtest(self) -> None:
        from .report.failure_text import case_outcome, failure_message

        state = self.config.stash[_STATE]
        records = _records(state, self)
        status, text = case_outcome(records)
        if status == "skipped":
            pytest.skip(text)
        if status == "failed":
            command = reproduce_command(state.options, self.case.layer, self.case.id)
            pytest.fail(failure_message(records, command), pytrace=False)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


def _checker(state: _SweepState) -> Any:
    from .execution.implementation import BUILTIN
    from .execution.options import OPTIONS, CheckOptions, check_options
    from .execution.runner import CaseChecker
    from .oracle import default_cache_dir

    if state.executor is None:
        options = state.options
        defaults = {option.dest: option.default if option.parse else False for option in OPTIONS}
        values = {**defaults, **options.shared, "timeout": options.timeout, "workers": options.workers}
        check: CheckOptions = check_options(values, str(default_cache_dir()))
        reference = None if state.plan.implementation.name == BUILTIN else state.plan.implementation.name
        state.executor = CaseChecker(reference, check)
    return state.executor


def _records(state: _SweepState, item: RefcheckCase) -> list[dict[str, Any]]:
    """The case's records; the next few cases are submitted now so the workers keep busy."""
    options = state.options
    checker = _checker(state)
    ahead = [node for node in item.session.items if isinstance(node, RefcheckCase)]
    if state.order is None:
        state.order = {node.nodeid: index for index, node in enumerate(ahead)}
    start = state.order.get(item.nodeid, 0)
    # In-process runs compute on submit: only the current case, then.
    window = ahead[start:start + 1 + 2 * options.workers] if options.workers else [item]
    if item not in window:
        window.insert(0, item)
    for pending in window:
        if pending.nodeid not in state.futures:
            state.futures[pending.nodeid] = checker.submit(pending.case)
    return checker.records(state.futures.pop(item.nodeid))


def reproduce_command(options: RefcheckOptions, layer: str, case_id: str, *, where: str | None = None,
                      seed: int | None = None) -> str:
    """The ``refcheck run`` command that checks this one case the same way: the same command the
    console and the reports print (:func:`refcheck.report.groups.repro_command`), from this run's options.
    ``where`` and ``seed``: a case named by its parameters (a fuzzed one) and the base seed of its inputs."""
    from .report.groups import repro_command

    run_options = {**options.shared, "impl": options.impl, "cases": options.cases, "dtype": options.dtype,
                   "seed": options.seed if seed is None else seed, "quick": options.quick and not where,
                   "map": options.map, "forward_only": options.forward_only, "timeout": options.timeout,
                   "where": {case_id: where} if where else {}}
    return repro_command(run_options, layer, case_id)


def __getattr__(name: str) -> Any:
    """case_outcome and failure_message live in refcheck.report.failure_text (loaded on first use)."""
    if name in ("case_outcome", "failure_message"):
        from .report import failure_text

        return getattr(failure_text, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
