"""relu whose gradient passes dout where x >= 0: wrong only at exact zeros (torch passes none there)."""
from __future__ import annotations

import numpy as np

__all__ = ["relu_backward", "relu_forward"]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(x, 0), x


def relu_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    return dout * (x >= 0)
