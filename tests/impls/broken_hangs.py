"""relu that never returns for one input: float32 activations of shape (2, 3, 4, 4)."""
from __future__ import annotations

import time

import numpy as np

from refcheck.layers import relu_backward
from refcheck.layers import relu_forward as _relu_forward

__all__ = ["relu_backward", "relu_forward"]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relu; sleeps for 1000 s on float32 inputs of shape (2, 3, 4, 4)."""
    if x.shape == (2, 3, 4, 4) and x.dtype == np.float32:
        time.sleep(1000)
    return _relu_forward(x)
