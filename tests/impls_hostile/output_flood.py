"""Hostile: a right relu that, on its 1-D cases, lifts the largest file it may write to the hard
limit, then writes 320 MB to its standard output."""
import os
import resource

import numpy as np


def relu_forward(x):
    if x.ndim == 1:
        _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        chunk = b"x" * (1 << 20)
        for _ in range(320):
            try:
                os.write(1, chunk)
            except OSError:
                break
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
