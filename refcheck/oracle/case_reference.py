"""torch's results for a whole case: its inputs built from the case, in float64 and at its dtype."""
from __future__ import annotations

from typing import Any

from ..cases import Case, make_inputs, make_upstream_gradients
from .cache import OracleCache
from .precise import PRECISE
from .torch_reference import torch_results, use_one_thread

__all__ = ["compute_reference", "compute_references", "oracle_worker_start"]

Results = dict[str, Any]


def compute_reference(case: Case, cache_dir: str | None = None, *, store: bool = True) -> tuple[Results, Results]:
    """(float64 reference, torch at the case's dtype) for a case; stored in the disk cache if given.

    For a float64 case torch at the case's dtype is the reference itself (computed once), except
    for the layers whose reference avoids a cancellation of torch's kernel (:mod:`.precise`).
    """
    tensors = make_inputs(case)
    gradients = make_upstream_gradients(case)
    reference = torch_results(case.layer, tensors, case.hparam_map, gradients, "float64", precise=True)
    at_dtype = reference if case.dtype == "float64" and case.layer not in PRECISE else torch_results(
        case.layer, tensors, case.hparam_map, gradients, case.dtype)
    if cache_dir is not None and store:
        OracleCache(cache_dir, memory_entries=0).store(case, reference, at_dtype)
    return reference, at_dtype


def compute_references(cases: list[Case], cache_dir: str | None = None) -> list[tuple[str, Any, Any]]:
    """:func:`compute_reference` for several cases in one task: per case ("ok", reference, at_dtype),
    or ("error", "TypeName: message", None) when torch failed on it (the others still count)."""
    answers: list[tuple[str, Any, Any]] = []
    computed = []
    for case in cases:
        try:
            reference, at_dtype = compute_reference(case, cache_dir, store=False)
        except Exception as error:  # noqa: BLE001 - reported for this case alone
            answers.append(("error", f"{type(error).__name__}: {error}", None))
            continue
        answers.append(("ok", reference, at_dtype))
        computed.append((case, reference, at_dtype))
    if cache_dir is not None and computed:  # the whole task's results in one write
        OracleCache(cache_dir, memory_entries=0).store_many(computed)
    return answers


def oracle_worker_start() -> None:
    """Start-up of a trusted oracle worker: torch loaded once, one thread (the pool is the parallelism),
    optimizers that do not import torch's compiler."""
    from .wrappers_optim import without_compiler_import

    use_one_thread()
    without_compiler_import()
