"""Library-style layers whose parameters are objects (``self.weight = Parameter(array)`` with
``.data`` and ``.grad``), as small numpy frameworks write them: the case's parameters are written
into the holders, the gradients read from their ``.grad``; correct code passes (float32 cases and
layers built without a bias too), a planted mistake fails on its tensor, and a mapping can name a
holder refcheck cannot guess (``weight = "theta.data"``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from refcheck.adapters.mapping import parse_mapping
from refcheck.execution.sweep import check
from refcheck.specs import CaseFileError

FRAMEWORK = '''
import numpy as np


class Parameter:
    def __init__(self, data):
        self.data = np.asarray(data)
        self.grad = np.zeros_like(self.data)      # float64 here: the constructor's random init


class Linear:
    def __init__(self, in_features, out_features, bias=True):
        self.weight = Parameter(np.random.randn(out_features, in_features))
        self.bias = Parameter(np.zeros(out_features)) if bias else None

    def forward(self, x):
        self.x = x
        out = x @ self.weight.data.T
        return out + self.bias.data if self.bias is not None else out

    def backward(self, dout):
        x2, d2 = self.x.reshape(-1, self.x.shape[-1]), dout.reshape(-1, dout.shape[-1])
        self.weight.grad += d2.T @ x2
        if self.bias is not None:
            self.bias.grad += d2.sum(axis=0)
        return dout @ self.weight.data


class LayerNorm:
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.axes, self.eps = tuple(range(-len(shape), 0)), eps
        self.weight = Parameter(np.ones(shape)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape)) if elementwise_affine else None

    def forward(self, x):
        mu = x.mean(axis=self.axes, keepdims=True)
        self.inv = 1 / np.sqrt(x.var(axis=self.axes, keepdims=True) + self.eps)
        self.xhat = (x - mu) * self.inv
        if self.weight is None:
            return self.xhat
        return self.xhat * self.weight.data + self.bias.data

    def backward(self, dout):
        lead = tuple(range(dout.ndim - len(self.axes)))
        g = dout
        if self.weight is not None:
            self.weight.grad += (dout * self.xhat).sum(axis=lead)
            self.bias.grad += dout.sum(axis=lead)
            g = dout * self.weight.data
        mean = lambda a: a.mean(axis=self.axes, keepdims=True)
        return self.inv * (g - mean(g) - self.xhat * mean(g * self.xhat))
'''


def _module(tmp_path: Path, source: str, name: str = "mynn.py") -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


def _statuses(frame, tensor=None):
    rows = frame if tensor is None else frame[frame["tensor"] == tensor]
    return set(rows.loc[rows["status"] != "skipped", "status"])


def test_parameter_objects_are_set_and_their_grad_read(tmp_path):
    frame = check(str(_module(tmp_path, FRAMEWORK)), ["linear", "layer_norm"], quick=True, workers=0,
                  selfcheck=False)
    assert _statuses(frame) == {"passed"}
    ran = frame[frame["status"] != "skipped"]
    assert {"float32", "float64"} <= set(ran["dtype"])          # the holder's float64 grad is not left over
    assert ran["case"].str.contains("nobias").any()            # built without a bias: its holder is None
    assert set(ran["layer"]) == {"linear", "layer_norm"}


@pytest.mark.parametrize("mistake, tensor", [
    ("self.weight.grad += d2.T @ x2", "grad_weight"),          # the gradient left out of the holder
    ("self.bias.grad += d2.sum(axis=0)", "grad_bias"),
])
def test_a_gradient_missing_from_its_holder_fails_on_that_tensor(tmp_path, mistake, tensor):
    source = FRAMEWORK.replace(mistake, "pass")
    frame = check(str(_module(tmp_path, source)), ["linear"], quick=True, workers=0, selfcheck=False)
    assert _statuses(frame, tensor) == {"failed"}
    assert _statuses(frame, "output") == {"passed"}


THETA = '''
import numpy as np


class Param:
    def __init__(self, value):
        self.value = value
        self.grad = None


class Dense:
    def __init__(self, n_in, n_out):
        self.theta = Param(np.random.randn(n_out, n_in))     # a name refcheck cannot guess
        self.offset = Param(np.zeros(n_out))

    def forward(self, x):
        self.x = x
        return x @ self.theta.value.T + self.offset.value

    def backward(self, dout):
        x2, d2 = self.x.reshape(-1, self.x.shape[-1]), dout.reshape(-1, dout.shape[-1])
        self.theta.grad = d2.T @ x2
        self.offset.grad = d2.sum(axis=0)
        return dout @ self.theta.value
'''

THETA_MAPPING = """
[linear]
class = "Dense"
args = { in_features = "n_in", out_features = "n_out" }
weight = "theta.value"
bias = "offset.value"
grad_weight = "theta.grad"
grad_bias = "offset.grad"
"""


def test_a_mapping_names_a_holder_by_its_path(tmp_path):
    path = _module(tmp_path, THETA)
    (tmp_path / "refcheck.toml").write_text(THETA_MAPPING, encoding="utf-8")
    frame = check(str(path), ["linear"], quick=True, workers=0, selfcheck=False)
    assert _statuses(frame) == {"passed"}


@pytest.mark.parametrize("value", ["weight.data.raw", "weight data", "", 3])
def test_a_mapping_path_that_is_no_attribute_is_refused_naming_the_key(value):
    with pytest.raises(CaseFileError, match="linear.weight"):
        parse_mapping({"linear": {"class": "Dense", "weight": value}}, "refcheck.toml")
