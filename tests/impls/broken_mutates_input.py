"""relu that, for 2-d inputs, writes its result into x to save memory (mutating the caller's array)."""
from __future__ import annotations

import numpy as np

from refcheck.layers import relu_backward
from refcheck.layers import relu_forward as _relu_forward

__all__ = ["relu_backward", "relu_forward"]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relu; the 2-d path works in place on x."""
    if x.ndim == 2:
        np.maximum(x, 0, out=x)
        return x, x
    return _relu_forward(x)
