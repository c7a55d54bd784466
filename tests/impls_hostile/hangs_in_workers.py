"""relu that never returns in refcheck's worker processes (every case hangs there), while the
discovery call made in the main process returns: no case of the run ever finishes."""
from __future__ import annotations

import multiprocessing
import time

import numpy as np


def relu_forward(x):
    while multiprocessing.parent_process() is not None:
        time.sleep(0.05)
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
