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


CONV_WITH_HOLDERS = '''
import numpy as np


class Parameter:
    def __init__(self, data):
        self.data = data
        self.grad = np.zeros_like(data)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        self.stride, self.padding = _pair(stride), _pair(padding)
        self.weight = Parameter(np.random.randn(out_channels, in_channels, *_pair(kernel_size)))
        self.bias = Parameter(np.zeros(out_channels)) if bias else None

    def forward(self, x):
        (sh, sw), (ph, pw) = self.stride, self.padding
        F, C, kh, kw = self.weight.data.shape
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
        out = np.zeros((x.shape[0], F, oh, ow), dtype=x.dtype)
        for i in range(oh):
            for j in range(ow):
                window = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                out[:, :, i, j] = np.tensordot(window, self.weight.data, axes=([1, 2, 3], [1, 2, 3]))
        if self.bias is not None:
            out += self.bias.data[None, :, None, None]
        self.xp, self.shape = xp, x.shape
        return out

    def backward(self, dout):
        (sh, sw), (ph, pw) = self.stride, self.padding
        kh, kw = self.weight.data.shape[2:]
        dxp = np.zeros_like(self.xp)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                window = self.xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                self.weight.grad += np.tensordot(dout[:, :, i, j], window, axes=([0], [0]))
                dxp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.tensordot(
                    dout[:, :, i, j], self.weight.data, axes=([1], [0]))
        if self.bias is not None:
            self.bias.grad += dout.sum(axis=(0, 2, 3))
        return dxp[:, :, ph:ph + self.shape[2], pw:pw + self.shape[3]]
'''


def test_a_case_without_bias_first_leaves_the_bias_holder_of_later_cases_alone(tmp_path):
    # Where the parameters live is found once per layer: a first case without bias (the holder
    # None) was remembered as a bare attribute, and it and every later case got a bare array
    # where the code reads .data (forward raised). A case without bias writes no bias now.
    import numpy as np

    from refcheck.execution.implementation import load_implementation

    conv = load_implementation(str(_module(tmp_path, CONV_WITH_HOLDERS))).layers["conv2d"]
    rng = np.random.default_rng(0)
    x, weight, bias = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 1, 1)), rng.standard_normal(2)
    expected = np.einsum("nchw,fc->nfhw", x, weight[:, :, 0, 0])
    out, cache = conv.forward(x, weight, None, stride=(1, 1), padding=(0, 0))
    np.testing.assert_allclose(out, expected)
    assert conv.backward(np.ones_like(out), cache)[2] is None
    out, cache = conv.forward(x, weight, bias, stride=(1, 1), padding=(0, 0))
    np.testing.assert_allclose(out, expected + bias[None, :, None, None])
    np.testing.assert_allclose(conv.backward(np.ones_like(out), cache)[2], np.full(2, 2 * 5 * 4))


def test_a_layer_with_parameter_holders_passes_whichever_case_comes_first(tmp_path):
    frame = check(str(_module(tmp_path, CONV_WITH_HOLDERS)), ["conv2d"], quick=True, workers=1, selfcheck=False)
    assert _statuses(frame) == {"passed"}
    assert frame["case"].str.contains("nobias").any()
