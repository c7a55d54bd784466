"""What a diagnosis works from: which tensors failed, and whether a candidate explains a failure.

A *candidate* is what a specific mistake would have produced (torch re-run on transformed inputs,
a transformed reference, or the user's own functions re-run on transformed inputs). It explains a
failing tensor when the user's result matches the candidate under the tensor's own tolerance
(the same rule as the comparison: error in eps of the case dtype <= max(floor, 8 x torch's error))
while the candidate itself does not match the reference, so a transformation that happens to be
the identity on this case (flipping a 1x1 kernel, a factor of 1) never explains anything.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..adapters import call_forward_backward
from ..compare import compare_tensor, compared_tensors, relative_error_eps, tolerance_eps

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..compare import CaseRun

__all__ = ["Check", "Context"]


class Context:
    """One failed case seen by the checks: inputs, results, references and cached re-runs.

    Parameters
    ----------
    run : CaseRun
        The executed case; ``run.tensors`` and ``run.dout`` are the pristine inputs.

    Attributes
    ----------
    layer, dtype : str
    hparams : dict
        Every hyperparameter in torch's names (what the oracle takes).
    compared : list of str
        The compared tensors of this case (``output``, ``grad_<tensor>`` for present tensors).
    allowed : dict
        Tolerance in eps of the case dtype for each compared tensor.
    """

    def __init__(self, run: CaseRun) -> None:
        self.run = run
        self.layer = run.case.layer
        self.dtype = run.case.dtype
        self.hparams: dict[str, Any] = run.case.hparam_map
        self.tensors = run.tensors
        self.dout = run.dout
        self.overrides = run.case.tolerance_map
        self.compared = list(compared_tensors(run.case))  # outputs present, then grad_<present tensor>
        self.allowed = {name: self._allowed(name) for name in self.compared}
        self._torch: dict[str, Any] = {}
        self._reruns: dict[str, Any] = {}

    def _allowed(self, tensor: str) -> float:
        reference, at_dtype = self.run.reference.get(tensor), self.run.torch_at_dtype.get(tensor)
        torch_eps = 0.0
        if reference is not None and at_dtype is not None:
            torch_eps = relative_error_eps(at_dtype, reference, self.dtype)
        return tolerance_eps(self.dtype, torch_eps, self.overrides)

    # --- what failed ---------------------------------------------------------------------

    def failing(self) -> list[str]:
        """Compared tensors whose result does not pass the comparison (same rule as the report)."""
        failed = []
        for tensor in self.compared:
            try:
                comparison = compare_tensor(tensor, self.run.results.get(tensor), self.run.reference.get(tensor),
                                            self.run.torch_at_dtype.get(tensor), self.dtype, self.overrides)
            except Exception:  # an unreadable result cannot be compared, let alone diagnosed
                continue
            if not comparison.passed:
                failed.append(tensor)
        return failed

    def result(self, tensor: str) -> np.ndarray | None:
        """The user's result as a numeric array (None when it is absent or not numeric)."""
        value = self.run.results.get(tensor)
        if value is None:
            return None
        array = np.asarray(value)
        return array if array.dtype.kind in "fiu" else None

    def reference(self, tensor: str) -> np.ndarray | None:
        """The float64 torch reference of a compared tensor."""
        return self.run.reference.get(tensor)

    def wide(self, name: str) -> np.ndarray:
        """An input tensor (or ``dout``) in float64."""
        value = self.dout if name == "dout" else self.tensors[name]
        return np.asarray(value, dtype=np.float64)

    # --- comparisons -----------------------------------------------------------------------

    def close(self, tensor: str, candidate: Any, reference: np.ndarray | None = None) -> bool:
        """Does ``candidate`` agree with ``reference`` (default: the real one) within the tolerance?"""
        reference = self.reference(tensor) if reference is None else reference
        if candidate is None or reference is None:
            return False
        candidate, reference = np.asarray(candidate), np.asarray(reference)
        if candidate.shape != reference.shape or candidate.dtype.kind not in "fiu":
            return False
        error = relative_error_eps(candidate.astype(np.float64), reference.astype(np.float64), self.dtype)
        return error <= self.allowed[tensor]

    def explains(self, tensor: str, candidate: Any) -> bool:
        """The user's result matches the candidate, and the candidate differs from the reference."""
        if candidate is None:
            return False
        return self.close(tensor, self.result(tensor), candidate) and not self.close(tensor, candidate)

    def fixes(self, tensor: str, transformed: Any) -> bool:
        """The user's result, transformed (e.g. summed over a forgotten axis), matches the reference."""
        return self.close(tensor, transformed)

    # --- re-running -----------------------------------------------------------------------

    def torch(self, key: str, *, tensors: Mapping[str, Any] | None = None,
              hparams: Mapping[str, Any] | None = None, dout: np.ndarray | None = None,
              dtype: str = "float64") -> dict[str, Any]:
        """torch (float64 by default) on the case's inputs with some tensors or hyperparameters replaced.

        Cached under ``key``; a configuration torch rejects raises (each time it is asked for).
        """
        def compute() -> dict[str, Any]:
            from ..oracle import torch_results  # torch only where a diagnosis needs it

            # Every output's upstream gradient (a layer with several outputs gets one per output).
            upstream = (self.run.gradients or self.dout) if dout is None else dout
            return torch_results(self.layer, {**self.tensors, **(tensors or {})}, {**self.hparams, **(hparams or {})},
                                 upstream, dtype)

        return _cached(self._torch, key, compute)

    def rerun(self, key: str, tensors: Mapping[str, Any], dout: np.ndarray) -> dict[str, Any]:
        """The user's forward and backward on replaced inputs: ``{"output": ..., "grad_<t>": ...}``.

        Inputs are handed as fresh copies; cached under ``key``; whatever the user's code raises
        propagates (the caller treats it as "this mistake does not apply").
        """
        replaced = {**self.tensors, **tensors}
        gradients = {self.run.spec.differentiable_outputs[0]: dout}
        if self.run.rerun is not None:  # the user's code runs in its own process, never here
            return _cached(self._reruns, key, lambda: self.run.rerun(replaced, gradients))
        return _cached(self._reruns, key, lambda: call_forward_backward(
            self.run.spec, self.run.functions, replaced, self.run.hparams, gradients))


def _cached(store: dict[str, Any], key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()`` once per key; an exception is cached too and raised again each time it is asked for."""
    if key not in store:
        try:
            store[key] = compute()
        except Exception as error:
            store[key] = error
    value = store[key]
    if isinstance(value, Exception):
        raise value
    return value


Check = Callable[[Context, str], "str | None"]
"""A check: ``check(context, failing_tensor) -> message naming the mistake, or None``."""
