"""The built-in numpy layers, following refcheck's implementation contract.

Each layer has ``<layer>_forward(tensors..., *, hyperparameters) -> (out, cache)`` and
``<layer>_backward(dout, cache) -> gradients``, and each optimizer update rule has
``<rule>_step(param, grad, state, *, hyperparameters) -> (new_param, new_state)``; `refcheck run`
checks this module through the same path as a user's module.
"""
from __future__ import annotations

from .activations import *  # noqa: F401,F403
from .activations_extra import *  # noqa: F401,F403
from .adaptive import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .conv_nd import *  # noqa: F401,F403
from .conv_transpose import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .losses_extra import *  # noqa: F401,F403
from .lp_pooling import *  # noqa: F401,F403
from .norm_running import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .pooling1d import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
