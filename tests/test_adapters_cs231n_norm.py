"""CS231n-style batchnorm, spatial batchnorm, layernorm, spatial groupnorm, dropout and word
embedding, written here the way the assignments ask for them, checked through the adapters.

A correct module passes every case it can run (the rest are skipped with a reason); the CS231n
conventions (momentum as the old value's weight, the biased running variance, p as the keep
probability, (1, C, 1, 1) gamma) are mapped, not mistaken for errors; a planted mistake still fails.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from refcheck.execution.sweep import check, plan_sweep

CS231N = '''
import numpy as np

def batchnorm_forward(x, gamma, beta, bn_param):
    mode, eps, momentum = bn_param["mode"], bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        xhat = (x - mu) / np.sqrt(var + eps)
        out = gamma * xhat + beta
        cache = (xhat, gamma, var, eps)
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        xhat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * xhat + beta
        cache = (xhat, gamma, running_var, eps)
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache + (mode,)

def batchnorm_backward(dout, cache):
    xhat, gamma, var, eps, mode = cache
    dgamma = (dout * xhat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    g = dout * gamma
    inv = 1 / np.sqrt(var + eps)
    if mode == "train":
        dx = inv * (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0))
    else:
        dx = g * inv
    return dx, dgamma, dbeta

def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    out, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, bn_param)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), cache

def spatial_batchnorm_backward(dout, cache):
    N, C, H, W = dout.shape
    dx, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, C), cache)
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta

def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, var, eps)

def layernorm_backward(dout, cache):
    xhat, gamma, var, eps = cache
    g = dout * gamma
    dx = (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True)) / np.sqrt(var + eps)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)

def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    eps = gn_param.get("eps", 1e-5)
    N, C, H, W = x.shape
    xg = x.reshape(N, G, -1)
    mu = xg.mean(axis=2, keepdims=True)
    var = xg.var(axis=2, keepdims=True)
    xhat = ((xg - mu) / np.sqrt(var + eps)).reshape(x.shape)
    return gamma * xhat + beta, (xhat, gamma, var, eps, G)

def spatial_groupnorm_backward(dout, cache):
    xhat, gamma, var, eps, G = cache
    N, C, H, W = dout.shape
    dgamma = (dout * xhat).sum(axis=(0, 2, 3), keepdims=True)
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    g = (dout * gamma).reshape(N, G, -1)
    xh = xhat.reshape(N, G, -1)
    dx = (g - g.mean(axis=2, keepdims=True) - xh * (g * xh).mean(axis=2, keepdims=True)) / np.sqrt(var + eps)
    return dx.reshape(dout.shape), dgamma, dbeta

def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    if mode == "train":
        mask = ((np.random.rand(*x.shape) < p) / p).astype(x.dtype)
        out = x * mask
    else:
        out = x
    return out.astype(x.dtype, copy=False), (dropout_param, mask)

def dropout_backward(dout, cache):
    dropout_param, mask = cache
    return dout * mask if dropout_param["mode"] == "train" else dout

def word_embedding_forward(x, W):
    return W[x], (x, W.shape)

def word_embedding_backward(dout, cache):
    x, shape = cache
    dW = np.zeros(shape, dtype=dout.dtype)
    np.add.at(dW, x, dout)
    return dW
'''

LAYERS = ["batch_norm", "layer_norm", "group_norm", "dropout", "embedding"]


def _run(tmp_path: Path, source: str, layers=LAYERS):
    impl = tmp_path / "cs231n_layers.py"
    impl.write_text(source, encoding="utf-8")
    return check(impl=str(impl), layers=layers, workers=0, selfcheck=False)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("cs231n"), CS231N)


def test_correct_cs231n_module_passes_what_it_can_run(frame):
    ran = frame[frame["status"] != "skipped"]
    assert (ran["status"] == "passed").all(), ran.loc[ran["status"] != "passed", ["case", "tensor", "reason"]]
    for layer in LAYERS:
        assert (ran["layer"] == layer).sum() >= 10, layer


def test_running_statistics_are_compared_in_training(frame):
    rows = frame[(frame["layer"] == "batch_norm") & frame["case"].str.contains("trainT")]
    assert (rows.loc[rows["tensor"] == "new_running_var", "status"] == "passed").sum() >= 5


def test_what_cs231n_cannot_express_is_left_out_or_skipped_with_its_reason(tmp_path, frame):
    # Hyperparameter values and input ranks the functions cannot take are outside the supported
    # space: never run, summarised once per layer in the plan (batchnorm on (N, C, L) inputs too,
    # so the pairwise coverage is held over the cases it runs).
    impl = tmp_path / "cs231n_layers.py"
    impl.write_text(CS231N, encoding="utf-8")
    plan = plan_sweep(str(impl), LAYERS)
    assert "padding_idx" in plan.unsupported["embedding"]  # word_embedding has none
    assert "3-d inputs" in plan.unsupported["batch_norm"]
    norm = frame[frame["layer"] == "batch_norm"]
    assert not (norm["input_shape"].str.count(",") == 2).any() and (norm["status"] == "passed").any()
    dropout = frame[frame["layer"] == "dropout"]
    training = dropout["training"].astype(str) == "True"
    assert not ((dropout["p"].astype(float) == 1.0) & training).any()   # keep probability 0 is never run
    assert (dropout["status"] == "passed").any()


@pytest.mark.parametrize("old, new, layer, tensor", [
    ("running_var = momentum * running_var + (1 - momentum) * var",
     "running_var = (1 - momentum) * running_var + momentum * var", "batch_norm", "new_running_var"),
    ("mask = ((np.random.rand(*x.shape) < p) / p)", "mask = ((np.random.rand(*x.shape) < p) * p)", "dropout", "output"),
    ("np.add.at(dW, x, dout)", "dW[x] = dout", "embedding", "grad_weight"),
])
def test_a_planted_mistake_still_fails(tmp_path, old, new, layer, tensor):
    assert old in CS231N
    frame = _run(tmp_path, CS231N.replace(old, new), [layer])
    assert (frame.loc[frame["tensor"] == tensor, "status"] == "failed").any()


def test_a_test_mode_without_a_cache_is_skipped_with_its_outputs_compared(tmp_path):
    """The assignment's own batchnorm keeps no cache in test mode (its backward is for training):
    evaluation cases are skipped with the reason (not errors, and never passed with their gradients
    unchecked), saying that the outputs were compared and are right; a wrong output still fails."""
    source = CS231N.replace("        cache = (xhat, gamma, running_var, eps)\n", "        cache = None\n")
    source = source.replace("    return out, cache + (mode,)", "    return out, (None if cache is None else cache + (mode,))")
    frame = _run(tmp_path, source, ["batch_norm"])
    evaluation = frame[(frame["training"].astype(str) == "False") & frame["reason"].fillna("").str.contains("test mode")]
    assert not evaluation.empty and set(evaluation["status"]) == {"skipped"}
    outputs = evaluation[evaluation["tensor"] == "output"]
    assert len(outputs) and outputs["reason"].str.endswith("(its outputs were compared and are right)").all()
    assert "error" not in set(frame["status"]) and "failed" not in set(frame["status"])
    wrong = source.replace("        xhat = (x - running_mean) / np.sqrt(running_var + eps)",
                           "        xhat = (x - running_mean) / np.sqrt(running_var)")  # eps left out
    (tmp_path / "wrong").mkdir()
    wrong_frame = _run(tmp_path / "wrong", wrong, ["batch_norm"])
    failed = wrong_frame[(wrong_frame["training"].astype(str) == "False") & (wrong_frame["status"] == "failed")]
    assert set(failed["tensor"]) >= {"output"}


def test_inspect_and_the_report_name_the_cs231n_adapter(tmp_path):
    from refcheck.adapters.inspect_report import inspect_text
    from refcheck.execution.implementation import load_implementation

    impl = tmp_path / "cs231n_layers.py"
    impl.write_text(CS231N, encoding="utf-8")
    implementation = load_implementation(str(impl))
    for layer in LAYERS:
        assert implementation.layers[layer].adapter == "cs231n", layer
        assert "adapter cs231n" in implementation.layers[layer].description
    text = inspect_text(implementation.name, implementation.layers, implementation.discovery)
    assert "called as it is" not in text
