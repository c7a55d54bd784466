"""Loss mistakes: the wrong reduction (a factor of the element count or the batch size), the 1/2
of E = 1/2 sum (t - y)^2, a missing factor 2 in the MSE gradient, the upstream gradient ignored,
a flipped sign; and combinations of these, which a single scale factor explains."""
from __future__ import annotations

import itertools

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic

__all__ = ["LOSS_CHECKS"]

# (factor, message): the user's value is reference / factor. The identity comes first.
Factor = tuple[float, str]


def _reduction_factors(context: Context) -> list[Factor]:
    """The scale errors of a wrong reduction, for this case's reduction and shapes."""
    shape = context.tensors["input"].shape
    elements = int(np.prod(shape, dtype=np.int64))
    if context.layer == "cross_entropy":
        # torch's mean is over the N samples, not over the N * C logits.
        count, count_name, other, other_name = shape[0], "the batch size", elements, "the number of logits"
    else:
        count, count_name = elements, "the element count"
        other, other_name = (shape[0], "the batch size") if len(shape) > 1 else (count, "")
    factors: list[Factor] = [(1.0, "")]
    if context.hparams["reduction"] == "mean":
        factors.append((1.0 / count, f"reduction='mean': divide by {count_name} ({count}); you summed"))
        if other not in (count, 1):
            factors.append((other / count, f"reduction='mean' divides by {count_name} ({count}), "
                                           f"not by {other_name} ({other})"))
    else:
        factors.append((float(count), f"reduction='sum': do not divide by {count_name} ({count})"))
        if other not in (count, 1):
            factors.append((float(other), f"reduction='sum': do not divide by {other_name} ({other})"))
    return factors


def scale_mistakes(context: Context, tensor: str) -> str | None:
    """The result is the reference times a known factor (or a product of known factors)."""
    reference = context.reference(tensor)
    groups: list[list[Factor]] = [_reduction_factors(context)]
    if context.layer == "mse_loss":
        if tensor == "output":
            groups.append([(1.0, ""), (2.0, "the loss has a 1/2 factor (E = 1/2 sum (t - y)^2); "
                                            "torch's mse_loss has none")])
        else:
            groups.append([(1.0, ""), (2.0, "missing factor 2 in the MSE gradient: "
                                            "d/dinput (input - target)^2 = 2 (input - target)")])
    if tensor != "output":
        upstream = float(context.dout)
        groups.append([(1.0, ""), (upstream, "upstream gradient ignored: multiply the gradient by dout")])
    groups.append([(1.0, ""), (-1.0, f"sign flipped: {tensor} has the opposite sign of torch's")])
    # Fewest mistakes first: one factor before a combination of two.
    combinations = sorted(itertools.product(*groups), key=lambda combo: sum(1 for _, text in combo if text))
    for combo in combinations:
        texts = [text for _, text in combo if text]
        if not texts:
            continue
        factor = float(np.prod([value for value, _ in combo]))
        if factor != 0.0 and context.explains(tensor, reference / factor):
            return "; ".join(texts)
    return None


LOSS_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_input"), float32_arithmetic),
    (("output", "grad_input"), scale_mistakes),
]
"""The loss checks in the order they are tried: (tensors each applies to, check)."""
