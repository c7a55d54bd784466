"""Hostile: a right relu that, on its 1-D cases, first lifts its memory limit to the hard limit
(refcheck sets the soft one), then allocates 1 GB."""
import resource

import numpy as np


def relu_forward(x):
    if x.ndim == 1:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        np.ones(1 << 27)  # 1 GB
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
