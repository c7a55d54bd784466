"""relu whose backward multiplies by a float64 mask, so float32 cases get a float64 grad_input."""
from __future__ import annotations

import numpy as np

from refcheck.layers import relu_forward

__all__ = ["relu_backward", "relu_forward"]


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dout * (out > 0), with the mask as Python floats (float64): the classic silent upcast."""
    return dout * (cache > 0).astype(float)
