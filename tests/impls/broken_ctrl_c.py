"""relu during which the user presses Ctrl-C: forward raises KeyboardInterrupt for 1-d inputs.

Run in-process (workers=0), this is exactly what Ctrl-C does while that case is running.
"""
from __future__ import annotations

import numpy as np

from refcheck.layers import relu_backward
from refcheck.layers import relu_forward as _relu_forward

__all__ = ["relu_backward", "relu_forward"]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relu, interrupted on 1-d inputs."""
    if x.ndim == 1:
        raise KeyboardInterrupt
    return _relu_forward(x)
