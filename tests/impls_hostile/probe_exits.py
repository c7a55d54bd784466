"""Classes whose backward ends the process or raises KeyboardInterrupt on every call, the probe
call that discovery makes included; the other layers are correct. Planning must go on: each
misbehaving layer becomes error rows, the others pass."""
from __future__ import annotations

import os

import numpy as np


class ReLU:
    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, dout):
        os._exit(0)


class Sigmoid:
    def forward(self, x):
        self.y = 1 / (1 + np.exp(-x))
        return self.y

    def backward(self, dout):
        raise KeyboardInterrupt


class Tanh:
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout):
        return dout * (1 - self.y ** 2)
