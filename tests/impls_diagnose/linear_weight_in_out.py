"""linear that reads the weight as (in_features, out_features): out = x @ weight (gradients consistent)."""


def linear_forward(x, weight, bias):
    out = x @ weight
    return (out if bias is None else out + bias), (x, weight, bias is not None)


def linear_backward(dout, cache):
    x, weight, has_bias = cache
    rows, cols = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])
    grad_bias = cols.sum(axis=0) if has_bias else None
    return dout @ weight.T, rows.T @ cols, grad_bias

