"""mse_loss whose gradient is built in a float64 buffer and lacks the factor 2: wrong dtype and wrong values."""
import numpy as np

from refcheck.layers import mse_loss_backward as _backward
from refcheck.layers import mse_loss_forward


def mse_loss_backward(dout, cache):
    grad = np.zeros(np.shape(_backward(dout, cache)))  # float64 whatever the inputs
    grad += _backward(dout, cache) / 2
    return grad


__all__ = ["mse_loss_forward", "mse_loss_backward"]
