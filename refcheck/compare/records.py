"""Result records: one plain dict per (case, compared tensor), and the executed-case record.

Records cross process boundaries and land in the report unchanged, so they hold only plain values
(strings, numbers). :class:`CaseRun` keeps the arrays of one executed case (what was handed to the
implementation, what it returned, torch's references) for the comparison and the diagnosis.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..adapters import LayerFunctions
from ..cases import Case
from ..specs import LAYERS, LayerSpec

__all__ = ["CaseRun", "base_record", "compared_tensors", "status_records"]


@dataclass
class CaseRun:
    """Everything known about one executed case; diagnosis reads it to explain a failure.

    tensors/dout: what was handed to the implementation (pristine copies); ``dout`` is the upstream
        gradient of the first differentiable output, ``gradients`` every output's by name (filled
        from ``dout`` for a one-output layer).
    results/reference/torch_at_dtype: compared-tensor name -> array (None where absent).
    rerun: ``(tensors, gradients) -> results`` runs the user's forward and backward again on other
        inputs, in the implementation's own process (None: call ``functions`` here).
    interleaved: the results come from a forward, another forward on other inputs, then the
        backward (as the sweep calls them), not from a forward directly followed by its backward.
    """

    case: Case
    spec: LayerSpec
    functions: LayerFunctions | None
    tensors: dict[str, np.ndarray | None]
    dout: np.ndarray
    hparams: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, np.ndarray | None] = field(default_factory=dict)
    torch_at_dtype: dict[str, np.ndarray | None] = field(default_factory=dict)
    mutated: list[str] = field(default_factory=list)
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    rerun: Callable[[dict[str, Any], dict[str, np.ndarray]], dict[str, Any]] | None = None
    interleaved: bool = False
    origin: str = ""  # the implementation as reports name it, layout included ("...; layout weight (in, out)")

    def __post_init__(self) -> None:
        if not self.gradients and self.spec.differentiable_outputs:  # an update rule has none
            self.gradients = {self.spec.differentiable_outputs[0]: self.dout}


def base_record(case: Case, tensor: str) -> dict[str, Any]:
    """The descriptive columns of a record: ids, hyperparameters (torch names), shapes."""
    record: dict[str, Any] = {"layer": case.layer, "case": case.id, "tensor": tensor, "dtype": case.dtype,
                              "status": "", "reason": ""}
    for name, value in case.hparams:
        record[name] = repr(value) if isinstance(value, (tuple, str)) else value
    for name, shape in case.shapes:
        record[f"{name}_shape"] = repr(shape) if shape is not None else "None"
    record.update(values=case.values, seed=case.seed)
    return record


def status_records(case: Case, status: str, reason: str, **extra: Any) -> list[dict[str, Any]]:
    """One record per compared tensor, all with the same status (skipped, error, ...)."""
    return [{**base_record(case, tensor), "status": status, "reason": reason, **extra}
            for tensor in compared_tensors(case)]


def compared_tensors(case: Case) -> tuple[str, ...]:
    """The tensors compared for a case: its outputs, then the gradient of each tensor the case has."""
    spec = LAYERS[case.layer]
    shapes = case.shape_map
    outputs = spec.outputs
    if spec.multi_output:
        present = spec.output_shapes(shapes, case.hparam_map)
        outputs = tuple(name for name in spec.outputs if present.get(name) is not None)
    return outputs + tuple(f"grad_{n}" for n in spec.differentiable if shapes.get(n) is not None)
