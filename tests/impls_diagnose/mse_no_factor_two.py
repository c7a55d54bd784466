"""mse_loss with a correct loss but a gradient without the factor 2: (y - t) * dout."""
from refcheck.layers import mse_loss_backward as _backward
from refcheck.layers import mse_loss_forward


def mse_loss_backward(dout, cache):
    grad = _backward(dout, cache)
    return grad / grad.dtype.type(2)


__all__ = ["mse_loss_forward", "mse_loss_backward"]
