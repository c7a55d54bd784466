"""Planted mistakes in the normalisations, dropout, embedding and the new convolutions are diagnosed.

Each implementation below is written here (small numpy code, independent of refcheck's own layers
and of the diagnosis), with one mistake planted; it is checked through ``refcheck.execution.sweep.check``
on a small case space. The mistake must fail exactly the tensors (and cases) it breaks, and every
failing row must carry the diagnosis naming it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from refcheck.execution.sweep import check

BATCH_NORM = '''
import numpy as np

def _axes(x):
    return (0,) + tuple(range(2, x.ndim))

def batch_norm_forward(x, running_mean, running_var, weight, bias, *, training, momentum, eps):
    c = (1, -1) + (1,) * (x.ndim - 2)
    axes = AXES(x)
    if training:
        m = int(x.size // np.prod([x.shape[a] for a in range(x.ndim) if a not in axes]))
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        norm_var = var * m / (m - 1) if UNBIASED else var
        if RUNNING_VAR_IN_TRAINING and running_var is not None:
            norm_var = running_var.reshape(c)
        new_mean = new_var = None
        if running_mean is not None:
            w_new = 1 - momentum if MOMENTUM_OLD else momentum
            mc = x.size // x.shape[1]
            cm, cv = x.mean(axis=_axes(x)), x.var(axis=_axes(x))
            tracked = cv if RUNNING_BIASED else cv * mc / (mc - 1)
            new_mean = (1 - w_new) * running_mean + w_new * cm
            new_var = (1 - w_new) * running_var + w_new * tracked
    else:
        mean, norm_var = running_mean.reshape(c), running_var.reshape(c)
        new_mean, new_var = running_mean.copy(), running_var.copy()
    inv = 1 / (np.sqrt(norm_var) + eps) if EPS_OUTSIDE else 1 / np.sqrt(norm_var + eps)
    xhat = (x - mean) * inv
    w = np.ones(x.shape[1], x.dtype) if weight is None else weight
    out = xhat * w.reshape(c) + (0 if bias is None else bias.reshape(c))
    return (out.astype(x.dtype), new_mean, new_var), (xhat, inv, w, weight is not None, bias is not None, training, axes)

def batch_norm_backward(dout, cache):
    xhat, inv, w, has_w, has_b, training, axes = cache
    c = (1, -1) + (1,) * (xhat.ndim - 2)
    red = (0,) + tuple(range(2, xhat.ndim))
    g = dout * w.reshape(c)
    if training and not CONSTANTS:
        mean_g = 0 if NO_MEAN else g.mean(axis=axes, keepdims=True)
        dx = inv * (g - mean_g - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    else:
        dx = g * inv
    return (dx.astype(dout.dtype), (dout * xhat).sum(axis=red) if has_w else None,
            dout.sum(axis=red) if has_b else None)
'''
FLAGS = {"AXES": "_axes", "UNBIASED": "False", "MOMENTUM_OLD": "False", "RUNNING_BIASED": "False", "EPS_OUTSIDE": "False",
             "NO_MEAN": "False", "CONSTANTS": "False", "RUNNING_VAR_IN_TRAINING": "False"}

BN_SPACE = '''
[batch_norm]
[batch_norm.grid]
input_shape = [[6, 3], [2, 3, 5], [2, 3, 3, 3]]
training = [true, false]
affine = [true, false]
dtype = ["float32", "float64"]
[batch_norm.vary]
momentum = [0.1, 0.3]
eps = [1e-3]     # large enough for eps outside the square root to show in float32
'''

GROUP_NORM = '''
import numpy as np

def group_norm_forward(x, weight, bias, *, num_groups, eps):
    n, c = x.shape[:2]
    # planted: channel k in group k % G (strided) instead of k // (C / G) (consecutive)
    rows = np.moveaxis(x.reshape(n, c // num_groups, num_groups, -1), 2, 1).reshape(n, num_groups, -1)
    mean = rows.mean(axis=2, keepdims=True)
    inv = 1 / np.sqrt(((rows - mean) ** 2).mean(axis=2, keepdims=True) + eps)
    xr = (rows - mean) * inv
    xhat = np.moveaxis(xr.reshape(n, num_groups, c // num_groups, -1), 1, 2).reshape(x.shape)
    p = (1, -1) + (1,) * (x.ndim - 2)
    out = xhat * weight.reshape(p) + bias.reshape(p)
    return out, (xhat, xr, inv, weight, num_groups)

def group_norm_backward(dout, cache):
    xhat, xr, inv, weight, groups = cache
    n, c = xhat.shape[:2]
    p = (1, -1) + (1,) * (xhat.ndim - 2)
    red = (0,) + tuple(range(2, xhat.ndim))
    g = dout * weight.reshape(p)
    gr = np.moveaxis(g.reshape(n, c // groups, groups, -1), 2, 1).reshape(n, groups, -1)
    dr = inv * (gr - gr.mean(axis=2, keepdims=True) - xr * (gr * xr).mean(axis=2, keepdims=True))
    dx = np.moveaxis(dr.reshape(n, groups, c // groups, -1), 1, 2).reshape(xhat.shape)
    return dx, (dout * xhat).sum(axis=red), dout.sum(axis=red)
'''
GN_SPACE = '''
[group_norm]
[group_norm.grid]
input_shape = [[2, 6, 5], [1, 6, 3, 3]]
num_groups = [1, 2, 3]
dtype = ["float32", "float64"]
'''

DROPOUT = '''
import numpy as np

def dropout_forward(x, mask, *, p, training):
    if not training or p == 0:
        return x.copy(), None
    scale = 0.0 if p == 1 else FORWARD_SCALE
    return (x * mask * scale).astype(x.dtype), (mask * scale * BACKWARD_FACTOR).astype(x.dtype)

def dropout_backward(dout, cache):
    return dout.copy() if cache is None else dout * cache
'''
DROPOUT_SPACE = '''
[dropout]
[dropout.grid]
p = [0.0, 0.3, 0.8, 1.0]
training = [true, false]
input_shape = [[4, 5]]
dtype = ["float32", "float64"]
'''

EMBEDDING = '''
import numpy as np

def embedding_forward(indices, weight, *, padding_idx):
    return weight[indices], (indices, weight.shape, weight.dtype, padding_idx)

def embedding_backward(dout, cache):
    indices, shape, dtype, padding_idx = cache
    grad = np.zeros(shape, dtype)
    grad[indices.reshape(-1)] = dout.reshape(-1, shape[1])   # planted: assigned, not accumulated
    if padding_idx is not None:
        grad[padding_idx] = 0
    return grad
'''
EMBEDDING_SPACE = '''
[embedding]
[embedding.grid]
padding_idx = ["none", 1]
input_shape = [[6], [3, 4]]
values = ["normal", "repeated"]
num_embeddings = [40]
dtype = ["float32", "float64"]
'''

CONV_TRANSPOSE = '''
import numpy as np
from refcheck.layers import conv_transpose2d_forward as _forward, conv_transpose2d_backward as _backward

def _rot(w):
    return np.ascontiguousarray(w[..., ::-1, ::-1])

# planted: the kernel stamped rotated (as if conv_transpose2d were a cross-correlation of the dilated input)
def conv_transpose2d_forward(x, weight, bias, *, stride, padding, output_padding, groups, dilation):
    return _forward(x, _rot(weight), bias, stride=stride, padding=padding, output_padding=output_padding,
                    groups=groups, dilation=dilation)

def conv_transpose2d_backward(dout, cache):
    dx, dw, db = _backward(dout, cache)
    return dx, _rot(dw), db
'''
CONV_TRANSPOSE_SPACE = '''
[conv_transpose2d]
[conv_transpose2d.grid]
kernel_size = [1, 3, [3, 2]]
stride = [1, 2]
padding = [0, 1]
dtype = ["float32", "float64"]
[conv_transpose2d.vary]
channels = [[2, 3]]
input_size = [[4, 5]]
'''

CONV1D = '''
import numpy as np
from refcheck.layers import conv1d_forward as _forward, conv1d_backward as _backward

# planted: a true convolution (kernel flipped) in forward and backward
def conv1d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    return _forward(x, weight[..., ::-1].copy(), bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)

def conv1d_backward(dout, cache):
    dx, dw, db = _backward(dout, cache)
    return dx, dw[..., ::-1].copy(), db
'''
CONV1D_SPACE = '''
[conv1d]
[conv1d.grid]
kernel_size = [1, 2, 3]
stride = [1, 2]
dtype = ["float32", "float64"]
[conv1d.vary]
channels = [[2, 4]]
input_size = [9]
'''


def _module(template: str, **flags: str) -> str:
    for name, value in flags.items():
        template = template.replace(name, value)
    return template


def _frame(tmp_path: Path, source: str, space: str, layer: str) -> pd.DataFrame:
    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "space.toml").write_text(space, encoding="utf-8")
    impl = tmp_path / "planted.py"
    impl.write_text(source, encoding="utf-8")
    return check(impl=str(impl), layers=[layer], cases=folder, workers=0, selfcheck=False,
                 allow_frameworks=True)  # planted mistakes built on refcheck's own layers


def _assert_diagnosed(frame: pd.DataFrame, expected: dict[str, str], failing_cases) -> None:
    """Exactly the expected tensors fail, on exactly the cases ``failing_cases(case id)`` names, each named."""
    assert not (frame["status"] == "error").any(), frame.loc[frame["status"] == "error", "reason"].tolist()
    failed = frame[frame["status"] == "failed"]
    assert set(failed["tensor"]) == set(expected)
    for tensor, phrase in expected.items():
        rows = frame[frame["tensor"] == tensor]
        should_fail = rows["case"].map(failing_cases)
        assert (rows["status"] == "failed").equals(should_fail), rows.loc[
            (rows["status"] == "failed") != should_fail, ["case", "status", "reason"]].to_string()
        named = rows.loc[should_fail, "diagnosis"].fillna("").str.contains(phrase, regex=False)
        assert named.all(), rows.loc[should_fail][~named][["case", "reason", "diagnosis"]].to_string()
    assert frame.loc[frame["status"] == "passed", "diagnosis"].isna().all()


def _training(case: str) -> bool:
    return "trainT" in case


def _training_with_stats(case: str) -> bool:
    return _training(case)


AFFECTED = ("output", "grad_input", "grad_weight")
BN_PLANTED = [
    ("unbiased_variance", {"UNBIASED": "True"}, dict.fromkeys(AFFECTED, "unbiased variance used to normalise"),
     _training),
    ("running_var_biased", {"RUNNING_BIASED": "True"}, {"new_running_var": "running variance updated with the biased"},
     _training),
    ("momentum_old", {"MOMENTUM_OLD": "True"},
     {"new_running_mean": "momentum taken as the weight of the old value",
      "new_running_var": "momentum taken as the weight of the old value"}, _training),
    ("eps_outside", {"EPS_OUTSIDE": "True"}, dict.fromkeys(AFFECTED, "eps outside the square root"),
     lambda case: True),
    ("mean_term_dropped", {"NO_MEAN": "True"}, {"grad_input": "mean term dropped in the backward"}, _training),
    ("statistics_constant", {"CONSTANTS": "True"}, {"grad_input": "treated as constants"}, _training),
    ("per_position_axes", {"AXES": "(lambda x: (0,))"},
     dict.fromkeys(AFFECTED, "normalised over the wrong axes: statistics per channel and position"),
     lambda case: _training(case) and "6x3-" not in case),
]


@pytest.mark.parametrize("flags, expected, failing", [row[1:] for row in BN_PLANTED], ids=[r[0] for r in BN_PLANTED])
def test_planted_batch_norm_mistake_is_diagnosed(tmp_path, flags, expected, failing):
    frame = _frame(tmp_path, _module(BATCH_NORM, **{**FLAGS, **flags}), BN_SPACE, "batch_norm")
    # without affine parameters there is no grad_weight row to fail
    _assert_diagnosed(frame, expected, failing)


def test_the_running_variance_used_in_training_is_diagnosed_on_the_output(tmp_path):
    frame = _frame(tmp_path, _module(BATCH_NORM, **{**FLAGS, "RUNNING_VAR_IN_TRAINING": "True"}), BN_SPACE, "batch_norm")
    output = frame[(frame["tensor"] == "output") & (frame["status"] == "failed")]
    assert len(output) and output["case"].map(_training).all()
    assert output["diagnosis"].fillna("").str.contains("running variance used in training", regex=False).all()


def test_correct_batch_norm_template_passes(tmp_path):
    frame = _frame(tmp_path, _module(BATCH_NORM, **FLAGS), BN_SPACE, "batch_norm")
    assert (frame["status"] == "passed").all(), frame.loc[frame["status"] != "passed", "reason"].tolist()


def test_group_norm_with_strided_groups_is_diagnosed(tmp_path):
    frame = _frame(tmp_path, GROUP_NORM, GN_SPACE, "group_norm")
    # one group, or groups of one... G=1 and G = C // (C / G) consecutive == strided only when G is 1
    _assert_diagnosed(frame, dict.fromkeys(AFFECTED, "channels grouped by c % num_groups"), lambda c: "G1-" not in c)


@pytest.mark.parametrize("forward, backward, expected", [
    ("p", "1", {"output": "kept values scaled by p", "grad_input": "kept values scaled by p in the backward"}),
    ("1 / (1 - p)", "(1 - p)", {"grad_input": "no scaling in the backward"}),
])
def test_planted_dropout_scaling_is_diagnosed(tmp_path, forward, backward, expected):
    source = _module(DROPOUT, FORWARD_SCALE=forward, BACKWARD_FACTOR=backward)
    frame = _frame(tmp_path, source, DROPOUT_SPACE, "dropout")
    _assert_diagnosed(frame, expected, lambda case: "trainT" in case and ("p0.3" in case or "p0.8" in case))


def test_embedding_gradient_assigned_is_diagnosed(tmp_path):
    frame = _frame(tmp_path, EMBEDDING, EMBEDDING_SPACE, "embedding")
    failed = frame[frame["status"] == "failed"]
    assert set(failed["tensor"]) == {"grad_weight"} and not (frame["status"] == "error").any()
    assert failed["diagnosis"].str.contains("assigned instead of accumulated").all()
    # every case whose indices repeat among 3 rows fails (6 lookups of 3 rows always repeat)
    repeated = frame[(frame["tensor"] == "grad_weight") & frame["case"].str.contains("repeated")]
    assert (repeated["status"] == "failed").all()


def test_conv_transpose2d_kernel_not_flipped_is_diagnosed(tmp_path):
    frame = _frame(tmp_path, CONV_TRANSPOSE, CONV_TRANSPOSE_SPACE, "conv_transpose2d")
    _assert_diagnosed(frame, dict.fromkeys(AFFECTED, "kernel not flipped"), lambda case: "k1x1" not in case)


def test_conv1d_true_convolution_is_diagnosed(tmp_path):
    frame = _frame(tmp_path, CONV1D, CONV1D_SPACE, "conv1d")
    _assert_diagnosed(frame, dict.fromkeys(AFFECTED, "kernel flipped"), lambda case: "-k1-" not in case)
