"""CS231n-style functions under names of the user's own, named by a mapping file.

A mapping says which function is which layer; how it is called (refcheck's contract, or CS231n's
``conv_forward(x, w, b, conv_param) -> (out, cache)``, a loss returning ``(loss, dx)``) is read
from one probe call, so a learner whose assignment renamed its functions gets the same verdicts as
under the usual names: correct code passes, a planted mistake fails on the tensor it is in.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from test_adapters_cs231n_norm import CS231N as CS231N_NORM

from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import check

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cs231n_layers.py"

# The user's names for the usual ones (longest first, so spatial_* is renamed before its stem).
RENAMES = {
    "spatial_batchnorm_forward": "bn2d_fwd", "spatial_batchnorm_backward": "bn2d_bwd",
    "batchnorm_forward": "bn_fwd", "batchnorm_backward": "bn_bwd",
    "layernorm_forward": "ln_fwd", "layernorm_backward": "ln_bwd",
    "conv_forward_naive": "my_conv", "conv_backward_naive": "my_conv_grad",
    "max_pool_forward_naive": "pool_fwd", "max_pool_backward_naive": "pool_bwd",
    "affine_forward": "dense_fwd", "affine_backward": "dense_bwd",
    "softmax_loss": "xent",
}

MAPPING = """
[conv2d]
function = "my_conv"
backward = "my_conv_grad"
[max_pool2d]
function = "pool_fwd"
backward = "pool_bwd"
[linear]
function = "dense_fwd"
backward = "dense_bwd"
[cross_entropy]
function = "xent"
[layer_norm]
function = "ln_fwd"
backward = "ln_bwd"
"""

LAYERS = ["conv2d", "max_pool2d", "linear", "cross_entropy", "layer_norm"]


def _renamed(source: str) -> str:
    for old, new in RENAMES.items():
        source = source.replace(old, new)
    return source


def _module(tmp_path: Path, source: str, mapping: str = MAPPING) -> Path:
    path = tmp_path / "assignment.py"
    path.write_text(source, encoding="utf-8")
    (tmp_path / "refcheck.toml").write_text(mapping, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> Path:
    source = EXAMPLE.read_text(encoding="utf-8") + CS231N_NORM.replace("import numpy as np", "")
    return _module(tmp_path_factory.mktemp("renamed"), _renamed(source))


def test_renamed_cs231n_functions_are_called_as_cs231n_functions(renamed):
    layers = load_implementation(str(renamed)).layers
    for layer in LAYERS:
        assert layers[layer].adapter == "mapping, cs231n", layer
    assert layers["conv2d"].origin == "cs231n: my_conv"
    assert layers["cross_entropy"].backward is not None  # xent returns (loss, dx): its own backward


def test_renamed_cs231n_functions_pass_what_they_can_run(renamed):
    frame = check(str(renamed), LAYERS, quick=True, workers=0, selfcheck=False)
    ran = frame[frame["status"] != "skipped"]
    assert (ran["status"] == "passed").all(), ran.loc[ran["status"] != "passed", ["case", "tensor", "reason"]]
    assert set(ran["layer"]) == set(LAYERS)
    # A loss without class weights gets no weighted case: planned without them (named in the
    # "not supported" line), the cases that run hold the coverage.
    entropy = frame[frame["layer"] == "cross_entropy"]
    assert len(entropy) and not entropy["case"].str.contains(r"-w\d").any()
    assert (entropy["status"] != "skipped").all()


def test_a_spatial_batchnorm_under_its_own_name_gets_the_4d_cases(tmp_path):
    mapping = '[batch_norm]\nfunction = "bn2d_fwd"\nbackward = "bn2d_bwd"\n'
    path = _module(tmp_path, _renamed(CS231N_NORM), mapping)
    frame = check(str(path), ["batch_norm"], quick=True, workers=0, selfcheck=False)
    ran = frame[frame["status"] != "skipped"]
    assert (ran["status"] == "passed").all() and len(ran)
    assert (ran["input_shape"].str.count(",") == 3).all()  # (N, C, H, W) only


def test_a_planted_mistake_in_a_renamed_backward_fails_on_its_tensor(renamed, tmp_path):
    source = renamed.read_text(encoding="utf-8")
    # the affine layer's dx scaled by mistake
    buggy = source.replace("dx = (dout @ w.T).reshape(x.shape)", "dx = (dout @ w.T * 1.01).reshape(x.shape)")
    assert buggy != source
    path = _module(tmp_path, buggy)
    frame = check(str(path), ["linear"], quick=True, workers=0, selfcheck=False)
    assert set(frame.loc[frame["tensor"] == "grad_input", "status"]) == {"failed"}
    assert set(frame.loc[frame["tensor"].isin(["output", "grad_weight", "grad_bias"]), "status"]) == {"passed"}


def test_a_renamed_backward_that_raises_is_reported_as_its_error(renamed, tmp_path):
    """Nothing fits on the probe call (the backward raises); the CS231n form's forward gave the
    layer's output and the contract's did not, so the cases show the backward's error."""
    source = renamed.read_text(encoding="utf-8")
    buggy = source.replace("def dense_bwd(dout, cache):\n", "def dense_bwd(dout, cache):\n    raise IndexError('my bug')\n")
    assert buggy != source
    path = _module(tmp_path, buggy)
    assert load_implementation(str(path)).layers["linear"].adapter == "mapping, cs231n"
    frame = check(str(path), ["linear"], quick=True, workers=0, selfcheck=False)
    assert set(frame.loc[frame["tensor"] == "output", "status"]) == {"passed"}
    grads = frame[frame["tensor"] != "output"]
    assert set(grads["status"]) == {"error"} and grads["reason"].str.contains("IndexError: my bug").all()


def test_contract_style_functions_in_a_mapping_stay_contract_style(tmp_path):
    source = '''
import numpy as np

def lin(x, weight, bias):
    return x @ weight.T + (0 if bias is None else bias), (x, weight, bias is not None)

def lin_grad(dout, cache):
    x, weight, has_bias = cache
    flat_dout, flat_x = dout.reshape(-1, dout.shape[-1]), x.reshape(-1, x.shape[-1])
    return dout @ weight, flat_dout.T @ flat_x, flat_dout.sum(axis=0) if has_bias else None
'''
    path = _module(tmp_path, source, '[linear]\nfunction = "lin"\nbackward = "lin_grad"\n')
    assert load_implementation(str(path)).layers["linear"].adapter == "mapping"
    frame = check(str(path), ["linear"], quick=True, workers=0, selfcheck=False)
    assert set(frame["status"]) == {"passed"}
