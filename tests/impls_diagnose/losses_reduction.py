"""Losses with the wrong reduction: mse_loss always averages (reduction ignored); cross_entropy's
mean divides by the number of logits N * C instead of the batch size N."""
from refcheck.layers import cross_entropy_backward as _ce_backward
from refcheck.layers import cross_entropy_forward as _ce_forward
from refcheck.layers import mse_loss_backward as _mse_backward
from refcheck.layers import mse_loss_forward as _mse_forward


def mse_loss_forward(input, target, *, reduction):
    return _mse_forward(input, target, reduction="mean")


def mse_loss_backward(dout, cache):
    return _mse_backward(dout, cache)


def cross_entropy_forward(input, target, *, reduction):
    loss, cache = _ce_forward(input, target, reduction=reduction)
    classes = input.shape[1]
    return (loss / classes if reduction == "mean" else loss), (cache, reduction, classes)


def cross_entropy_backward(dout, cache):
    inner, reduction, classes = cache
    (grad,) = _ce_backward(dout, inner)
    return grad / classes if reduction == "mean" else grad
