"""A relu that returns one module-level buffer per shape, overwritten by its next call: right for
each call alone, wrong in a network (two such layers share their output)."""
from __future__ import annotations

import numpy as np

_BUFFERS: dict[tuple, np.ndarray] = {}


def relu_forward(x):
    out = _BUFFERS.setdefault((x.shape, x.dtype), np.empty(x.shape, x.dtype))
    np.maximum(x, 0, out=out)
    return out, x.copy()


def relu_backward(dout, x):
    return dout * (x > 0)
