"""mse_loss whose gradient is right but written into a float64 buffer (np.zeros without dtype)."""
import numpy as np

from refcheck.layers import mse_loss_backward as _backward
from refcheck.layers import mse_loss_forward


def mse_loss_backward(dout, cache):
    grad = np.zeros(np.shape(_backward(dout, cache)))
    grad += _backward(dout, cache)
    return grad


__all__ = ["mse_loss_forward", "mse_loss_backward"]
