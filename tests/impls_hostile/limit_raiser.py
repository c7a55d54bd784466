"""Hostile: a right relu that, on its 1-D cases, first lifts its process's limits to their hard
values (the memory limit refcheck sets, and the largest file it may write), then allocates 1 GB and
writes 320 MB to its standard output."""
import os
import resource

import numpy as np


def relu_forward(x):
    if x.ndim == 1:
        for limit in (resource.RLIMIT_AS, resource.RLIMIT_FSIZE):
            _soft, hard = resource.getrlimit(limit)
            resource.setrlimit(limit, (hard, hard))
        np.ones(1 << 27)  # 1 GB
        chunk = b"x" * (1 << 20)
        for _ in range(320):
            try:
                os.write(1, chunk)
            except OSError:
                break
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
