"""Optimizer update rules in numpy: ``sgd``, ``rmsprop``, ``adam`` and ``adamw``, as pure steps.

The rules live one family per module (:mod:`.optim_sgd`, :mod:`.optim_rmsprop`,
:mod:`.optim_adam`; shared helpers in :mod:`.optim_core`); this module gathers them.

An update rule has no backward. Each is one function

    ``<rule>_step(param, grad, state, *, hyperparameters) -> (new_param, new_state)``

that performs one step of the matching ``torch.optim`` optimizer on one parameter tensor.
``state`` is a dict of arrays and ints with torch.optim's key names (``{}`` before the first
step); the step returns a new parameter and a new state dict and never writes into ``param``,
``grad`` or ``state``. Hyperparameters are named and defaulted as in torch.optim, and invalid
values raise ``ValueError`` as torch.optim's constructors do.

The arithmetic follows torch.optim's single-tensor path (``foreach=False``) operation by
operation, in the parameter's dtype, so that float32 results agree with torch float32 to a few
units in the last place. Scalars derived from hyperparameters (``1 - beta2``, ``lr / (1 -
beta1**step)``, ...) are computed in Python floats and rounded to the parameter's dtype where
they meet an array, as torch does with Python-number operands.

torch's conventions reproduced here:

- SGD's first momentum step stores the (decayed) gradient itself, ``buf = g``, with no
  ``(1 - dampening)`` factor; dampening applies from the second step on. With ``momentum=0``
  there is no state at all.
- Weight decay is an L2 term added to the gradient (``g + weight_decay * param``) in SGD,
  RMSprop and Adam; only AdamW decays the parameter itself (``param * (1 - lr *
  weight_decay)``) before the moment updates.
- ``maximize`` negates the gradient first, before weight decay.
- Adam's ``eps`` is added after the bias correction of the second moment:
  ``denom = sqrt(v) / sqrt(1 - beta2**t) + eps`` and ``step_size = lr / (1 - beta1**t)``.
- RMSprop's ``eps`` is added outside the square root, ``sqrt(square_avg) + eps``; centered
  RMSprop uses ``sqrt(square_avg - grad_avg**2) + eps`` (NaN if rounding makes the difference
  negative, as in torch).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .optim_adam import adam_step, adamw_step
from .optim_core import State
from .optim_rmsprop import rmsprop_step
from .optim_sgd import sgd_step

__all__ = [
    "UPDATE_RULES",
    "adam_step",
    "adamw_step",
    "rmsprop_step",
    "sgd_step",
]

UPDATE_RULES: dict[str, Callable[..., tuple[np.ndarray, State]]] = {
    "sgd": sgd_step,
    "rmsprop": rmsprop_step,
    "adam": adam_step,
    "adamw": adamw_step,
}
