"""relu that kills its own process on two inputs: os._exit(3) on one, SIGSEGV on another.

Only float32 inputs trigger it (refcheck's self-check calls forward in float64), so exactly one
case of each shape dies: shape (4, 5) exits with code 3, shape (7,) gets a segmentation fault.
"""
from __future__ import annotations

import os
import signal

import numpy as np

from refcheck.layers import relu_backward
from refcheck.layers import relu_forward as _relu_forward

__all__ = ["relu_backward", "relu_forward"]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relu, unless x is float32 of shape (4, 5) or (7,)."""
    if x.dtype == np.float32 and x.shape == (4, 5):
        os._exit(3)
    if x.dtype == np.float32 and x.shape == (7,):
        os.kill(os.getpid(), signal.SIGSEGV)
    return _relu_forward(x)
