"""The arrays of one case: what the implementation returned and torch's float64 reference.

Used by ``refcheck show`` to draw where in a tensor a case goes wrong. The implementation runs in
this process (one case, already known to finish within the sweep's limits).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..adapters import call_forward_backward, hparams_for_call
from ..cases import Case, make_inputs, make_upstream_gradient
from ..specs import LAYERS, UsageError
from .implementation import load_implementation

__all__ = ["case_arrays"]


def case_arrays(impl_reference: str | None, case: Case) -> tuple[dict[str, Any], dict[str, np.ndarray | None]]:
    """Run one case: ``(results, reference)``, both keyed ``output``, ``grad_<tensor>``.

    The implementation's exceptions propagate; a layer it lacks is a UsageError.
    """
    from ..oracle import torch_results  # the only torch import, kept off module import

    implementation = load_implementation(impl_reference)
    functions = implementation.layers.get(case.layer)
    if functions is None:
        raise UsageError(f"{implementation.name} has no {case.layer}")
    spec = LAYERS[case.layer]
    tensors = make_inputs(case)
    dout = make_upstream_gradient(case, spec.output_shape(case.shape_map, case.hparam_map))
    reference = torch_results(case.layer, tensors, case.hparam_map, dout, "float64")
    results = call_forward_backward(spec, functions, tensors, hparams_for_call(functions, case.hparam_map), dout)
    return results, reference
