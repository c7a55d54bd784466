"""Hostile: a right relu that writes 320 MB to its standard output on its 1-D cases."""
import os

import numpy as np


def relu_forward(x):
    if x.ndim == 1:
        chunk = b"x" * (1 << 20)
        for _ in range(320):
            try:
                os.write(1, chunk)
            except OSError:
                break
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
