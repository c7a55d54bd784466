"""torch calls for layers whose torch signature differs from refcheck's contract.

- batch_norm / instance_norm: torch updates ``running_mean`` and ``running_var`` in place; here they
  are cloned first and returned as the extra outputs ``(out, new_running_mean, new_running_var)``
  (None where the statistic is None).
- layer_norm / group_norm: torch takes ``normalized_shape`` / ``num_groups`` positionally before
  the weight; the contract passes tensors first and hyperparameters as keywords.
- dropout: torch draws its keep mask inside the call; the contract hands the mask in. torch's CPU
  dropout computes ``input * (bernoulli(1 - p) / (1 - p))``, ``input * 0`` for ``p == 1``, and
  returns ``input`` itself for ``p == 0`` or outside training; the same arithmetic is done here
  with the given mask in place of the drawn one (tests/test_oracle_wrappers.py replays torch's own
  mask and checks this against ``torch.nn.functional.dropout``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["batch_norm", "dropout", "group_norm", "instance_norm", "layer_norm"]


def _clone(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach().clone()


def batch_norm(input, running_mean, running_var, weight, bias, *, training, momentum, eps):
    running_mean, running_var = _clone(running_mean), _clone(running_var)
    out = F.batch_norm(input, running_mean, running_var, weight, bias, training=training, momentum=momentum, eps=eps)
    return out, running_mean, running_var


def instance_norm(input, running_mean, running_var, weight, bias, *, use_input_stats, momentum, eps):
    running_mean, running_var = _clone(running_mean), _clone(running_var)
    out = F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats=use_input_stats,
                          momentum=momentum, eps=eps)
    return out, running_mean, running_var


def layer_norm(input, weight, bias, *, normalized_shape, eps):
    return F.layer_norm(input, tuple(normalized_shape), weight, bias, eps)


def group_norm(input, weight, bias, *, num_groups, eps):
    return F.group_norm(input, num_groups, weight, bias, eps)


def dropout(input, mask, *, p, training):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * torch.zeros_like(input)
    return input * mask.to(input.dtype).div_(1 - p)
