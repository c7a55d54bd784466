"""linear whose backward loops over the rows of the batch writing '=' where '+=' belongs: the
weight and bias gradients keep the last row's term alone."""
import numpy as np


def linear_forward(x, weight, bias):
    out = x @ weight.T
    if bias is not None:
        out = out + bias
    return out, (x, weight, bias)


def linear_backward(dout, cache):
    x, weight, bias = cache
    rows_x, rows_d = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])
    grad_weight = np.zeros_like(weight)
    grad_bias = None if bias is None else np.zeros_like(bias)
    for row in range(rows_x.shape[0]):
        grad_weight = np.outer(rows_d[row], rows_x[row])  # '=' where '+=' belongs
        if bias is not None:
            grad_bias = rows_d[row].copy()
    return dout @ weight, grad_weight, grad_bias
