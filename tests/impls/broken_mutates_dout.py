"""relu whose backward, for 4-d activations, zeroes dout in place and returns it as grad_input."""
from __future__ import annotations

import numpy as np

from refcheck.layers import relu_backward as _relu_backward
from refcheck.layers import relu_forward

__all__ = ["relu_backward", "relu_forward"]


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """grad_input of relu; the 4-d path overwrites the caller's dout (values right, contract broken)."""
    if cache.ndim == 4:
        dout[cache <= 0] = 0
        return dout
    return _relu_backward(dout, cache)
