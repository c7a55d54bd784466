"""relu that clamps its input in place and returns it."""
import numpy as np


def relu_forward(x):
    np.maximum(x, 0, out=x)
    return x, x > 0


def relu_backward(dout, mask):
    return dout * mask
