"""Layers whose backward reads what the last forward call left in module or class state instead of
its cache: right when each backward directly follows its own forward, wrong in a network with two
such layers (forward A, forward B, backward A)."""
from __future__ import annotations

import numpy as np

_LAST: dict[str, np.ndarray] = {}


def relu_forward(x):
    _LAST["x"] = x
    return np.maximum(x, 0), None


def relu_backward(dout, cache):
    return dout * (_LAST["x"] > 0)


class Sigmoid:
    last_output = None                      # shared by every Sigmoid object

    def forward(self, x):
        Sigmoid.last_output = 1 / (1 + np.exp(-x))
        return Sigmoid.last_output

    def backward(self, dout):
        y = Sigmoid.last_output
        return dout * y * (1 - y)


class Tanh:                                 # keeps its state on the object: right
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout):
        return dout * (1 - self.y ** 2)
