"""Checking models end to end: the user's side in an implementation worker, the twin in an oracle
worker, the comparison and the location of the first mistake here.

The user's model runs in an implementation worker (no torch, captured output, memory and time
limits): an exception, a hang past the timeout or a dead worker becomes error rows. torch runs in a
trusted oracle worker. What crosses back is plain arrays and text.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..execution.executors import Executor, ProcessExecutor
from ..execution.limits import default_memory_limit
from .compare import locate, network_records
from .data import at_dtype, make_data, make_parameters
from .model_file import NetworkModel
from .user_side import run_user_model

__all__ = ["ModelRun", "check_models"]

DTYPES = ("float32", "float64")


@dataclass
class ModelRun:
    """One model at one dtype: its records, where it first went wrong, and the loss curves."""

    model: NetworkModel
    dtype: str
    records: list[dict[str, Any]]
    status: str
    located: str = ""
    style: str = ""
    implementation: str = ""
    update_rule: str = ""
    user_losses: list[float] = field(default_factory=list)
    torch_losses: list[float] = field(default_factory=list)
    reference_losses: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    traceback: str = ""

    @property
    def largest_gap(self) -> tuple[int, float] | None:
        """(step, |user - reference|) where the user's loss curve is furthest from torch's float64 one."""
        gaps = [(step, abs(u - r) if math.isfinite(u - r) else math.inf)
                for step, (u, r) in enumerate(zip(self.user_losses, self.reference_losses))]
        return max(gaps, key=lambda item: item[1]) if gaps else None


def _loss(step: Any) -> float:
    try:
        return float(step["loss"])
    except (TypeError, ValueError, KeyError):
        return float("nan")


def _status(records: list[dict[str, Any]]) -> str:
    statuses = {r["status"] for r in records}
    for status in ("error", "failed", "passed"):
        if status in statuses:
            return status
    return "skipped"


def _outcome(future: Future, timeout: float | None, what: str) -> tuple[Any, str]:
    try:
        return future.result(), ""
    except TimeoutError:
        return None, f"{what} timed out after {timeout:g} s"
    except Exception as error:  # noqa: BLE001 - a dead worker, a pickling failure: reported, not raised
        return None, f"{what}: {type(error).__name__}: {error}"


def check_models(reference: str | None, models: Sequence[NetworkModel], dtypes: Sequence[str] = DTYPES, *,
                 timeout: float | None = 60.0, map_path: str | None = None, executor: Executor | None = None,
                 oracle: Executor | None = None, allow_frameworks: bool = False, on_run: Callable[[ModelRun], None] | None = None) -> list[ModelRun]:
    """Check each model at each dtype; one :class:`ModelRun` each, in order."""
    own = executor is None, oracle is None
    executor = executor or ProcessExecutor(1, timeout, kind="implementation", memory_limit=default_memory_limit(1))
    oracle = oracle or ProcessExecutor(1, None, kind="oracle")
    from ..oracle.network_twin import twin_trajectory

    pending = []
    try:
        for model in models:
            data = make_parameters(model)
            data["x"], data["target"] = make_data(model)
            for dtype in dtypes:
                arrays = at_dtype(data, dtype)
                user = executor.submit(run_user_model, reference, model, arrays, map_path, timeout=timeout)
                regs = sorted({0.0, model.reg})
                twins = {reg: oracle.submit(twin_trajectory, model, arrays, dtype, reg) for reg in regs}
                pending.append((model, dtype, arrays, user, twins))
        runs = []
        for model, dtype, arrays, user, twins in pending:
            run = _judge(model, dtype, arrays, user, twins, timeout, allow_frameworks)
            runs.append(run)
            if on_run is not None:
                on_run(run)
        return runs
    finally:
        if own[0]:
            executor.shutdown(cancel_futures=True)
        if own[1]:
            oracle.shutdown(cancel_futures=True)


def _judge(model: NetworkModel, dtype: str, arrays: dict[str, Any], user: Future, twins: dict[float, Future],
           timeout: float | None, allow_frameworks: bool) -> ModelRun:
    raw, error = _outcome(user, timeout, "the implementation")
    if raw is None:
        raw = {"status": "error", "reason": error, "steps": [], "style": "", "origin": "", "rule_origin": ""}
    style = raw.get("style") or ("class" if model.model_class else "layers")
    twin, twin_error = _outcome(twins[model.reg if style == "class" else 0.0], None, "torch twin")
    records = network_records(model, dtype, raw, twin, twin_error, allow_frameworks)
    located = locate(model, records, style, raw.get("rule_origin", ""), start=arrays, raw_steps=raw.get("steps"),
                     twin_steps=twin["reference"] if twin else None)
    run = ModelRun(model, dtype, records, _status(records), located, style, raw.get("origin", ""),
                   raw.get("rule_origin", ""), notes=list(raw.get("notes", [])), stdout=raw.get("stdout", ""),
                   stderr=raw.get("stderr", ""), traceback=raw.get("traceback", ""))
    run.user_losses = [_loss(step) for step in raw.get("steps", [])]
    if twin:
        run.torch_losses = [_loss(step) for step in twin["at_dtype"]]
        run.reference_losses = [_loss(step) for step in twin["reference"]]
    return run
