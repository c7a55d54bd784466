"""Activation slips in the backward, each planted in an otherwise correct layer, are named by the
diagnosis (recomputed from the case's input and upstream gradient, independently of torch)."""
from __future__ import annotations

import pytest

from refcheck.execution.sweep import check

MISTAKES = {
    "relu": ('''
def relu_forward(x):
    return np.maximum(x, 0), x

def relu_backward(dout, x):
    return dout * (x >= 0)
''', "relu's gradient at 0 passed through"),
    "leaky_relu": ('''
def leaky_relu_forward(x, *, negative_slope=0.01):
    return np.where(x > 0, x, negative_slope * x), x

def leaky_relu_backward(dout, x):
    return dout * (x > 0)
''', "slope left out of the backward"),
    "tanh": ('''
def tanh_forward(x):
    return np.tanh(x), x

def tanh_backward(dout, x):
    return dout * (1 - x ** 2)
''', "derivative taken at the input"),
    "sigmoid": ('''
def sigmoid_forward(x):
    return 0.5 * (1 + np.tanh(0.5 * x)), x

def sigmoid_backward(dout, x):
    return dout * x * (1 - x)
''', "derivative taken at the input"),
    "softmax": ('''
def softmax_forward(x, *, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    y = e / e.sum(axis=dim, keepdims=True)
    return y, y

def softmax_backward(dout, y):
    return dout * y * (1 - y)
''', "softmax backward taken element by element"),
    "elu": ('''
def elu_forward(x, *, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), x

def elu_backward(dout, x):
    return dout * np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))
''', "alpha left out of the backward"),
    "elu, output": ('''
def elu_forward(x, *, alpha=1.0):
    y = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    return y, (x, y)

def elu_backward(dout, cache):
    x, y = cache
    return dout * np.where(x > 0, 1.0, y)
''', "derivative taken as the output"),
    "silu": ('''
def silu_forward(x):
    return x * 0.5 * (1 + np.tanh(0.5 * x)), x

def silu_backward(dout, x):
    return dout * 0.5 * (1 + np.tanh(0.5 * x))
''', "product rule cut short"),
    "softplus": ('''
def softplus_forward(x, *, beta=1.0, threshold=20.0):
    linear = beta * x > threshold
    return np.where(linear, x, np.logaddexp(0, beta * x) / beta), (x, linear)

def softplus_backward(dout, cache):
    x, linear = cache
    return dout * np.where(linear, 1.0, 0.5 * (1 + np.tanh(0.5 * x)))
''', "beta left out of the backward"),
    "hardtanh": ('''
def hardtanh_forward(x, *, min_val=-1.0, max_val=1.0):
    return np.clip(x, min_val, max_val), (x, min_val, max_val)

def hardtanh_backward(dout, cache):
    x, low, high = cache
    return dout * ((x >= low) & (x <= high))
''', "gradient passed at the bounds"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_an_activation_slip_in_the_backward_is_named(tmp_path, mistake):
    source, title = MISTAKES[mistake]
    layer = mistake.split(",")[0]
    path = tmp_path / f"{layer}_slip.py"
    path.write_text("import numpy as np\n" + source, encoding="utf-8")
    frame = check(str(path), [layer], quick=layer == "leaky_relu", workers=0, selfcheck=False)
    failed = frame[(frame["status"] == "failed") & (frame["tensor"] == "grad_input")]
    assert len(failed), layer
    named = failed["diagnosis"].fillna("").str.startswith(title)
    assert named.mean() >= 0.5, failed[["case", "diagnosis"]].to_string()  # the cases where it shows
    assert set(frame.loc[frame["tensor"] == "output", "status"]) == {"passed"}


@pytest.mark.parametrize("layer", ["softmax", "log_softmax"])
def test_an_exp_taken_without_subtracting_the_max_is_named_where_it_overflows(tmp_path, layer):
    take = "np.log(y)" if layer == "log_softmax" else "y"
    path = tmp_path / f"{layer}_unshifted.py"
    path.write_text(f'''import numpy as np

def {layer}_forward(x, *, dim):
    e = np.exp(x)
    y = e / e.sum(axis=dim, keepdims=True)
    return {take}, (y, dim)

def {layer}_backward(dout, cache):
    y, dim = cache
    if {layer == "softmax"}:
        return y * (dout - (dout * y).sum(axis=dim, keepdims=True))
    return dout - y * dout.sum(axis=dim, keepdims=True)
''', encoding="utf-8")
    # In worker processes: this suite turns the overflow's RuntimeWarning into an error in-process.
    frame = check(str(path), [layer], workers=1, selfcheck=False)
    failed = frame[(frame["status"] == "failed") & (frame["tensor"] == "output")]
    assert len(failed) and failed["reason"].str.contains("non-finite").all()
    named = failed["diagnosis"].fillna("").str.startswith("exp taken without subtracting the max")
    assert named.all(), failed.loc[~named, ["case", "reason", "diagnosis"]].to_string()
    assert set(frame.loc[~frame["case"].isin(failed["case"]), "status"]) == {"passed"}
