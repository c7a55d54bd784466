"""relu that is correct, except on its tiny 7-element inputs, which come late in the relu sweep
(after cases that pass): there it never returns."""
from __future__ import annotations

import time

import numpy as np


def _trouble(x):
    if x.shape == (7,) and 0 < np.abs(x).max() < 1e-20:
        while True:
            time.sleep(1)


def relu_forward(x):
    _trouble(x)
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
