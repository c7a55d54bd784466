"""relu that is correct, except on its tiny 7-element inputs, which come late in the relu sweep
(after cases that pass): there it ends its process with exit code 3."""
from __future__ import annotations

import os

import numpy as np


def _trouble(x):
    if x.shape == (7,) and 0 < np.abs(x).max() < 1e-20:
        os._exit(3)


def relu_forward(x):
    _trouble(x)
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
