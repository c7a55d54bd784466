"""relu that tries to allocate 16 GB on 1-D inputs; correct otherwise."""
from __future__ import annotations

import numpy as np

from refcheck.layers import relu_backward
from refcheck.layers import relu_forward as _forward

__all__ = ["relu_backward", "relu_forward"]


def relu_forward(x):
    if x.ndim == 1:
        hoard = np.ones(2**31)  # 16 GiB of float64
        x = x + hoard[: x.size]
    return _forward(x)
