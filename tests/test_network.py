"""Whole networks: shipped model files, the torch twin, planted wiring mistakes located, the command."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from network_models import (ADAM_NO_BIAS_CORRECTION, CS231N_ADAM, HANGS_IN_LINEAR, RAISES_IN_RELU, USES_TORCH, WRONG_FLATTEN,
                            WRONG_SAMPLE_POOL, three_layer_convnet)
from refcheck.cli import main
from refcheck.execution.executors import InlineExecutor
from refcheck.network.check import check_models
from refcheck.network.data import at_dtype, make_data, make_parameters
from refcheck.network.model_file import load_model, load_models, shipped_models
from refcheck.oracle.network_twin import twin_trajectory
from refcheck.specs import CaseFileError

SHIPPED = {path.stem: path for path in shipped_models()}


def _module(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _check(impl, models, dtypes=("float64", "float32"), allow_frameworks=True):
    # (the planted mistakes build on refcheck's own layers)
    return check_models(impl, models, dtypes, executor=InlineExecutor(), oracle=InlineExecutor(),
                        allow_frameworks=allow_frameworks)


def _rows(run, step=0):
    return {r["tensor"]: r for r in run.records if r["step"] == step}


# --- shipped model files ---------------------------------------------------------------------------

def test_the_shipped_networks_are_the_ones_described():
    layers = {name: [e.layer for e in load_model(path).layers] for name, path in SHIPPED.items()}
    assert layers["derivation_cnn"] == ["conv2d", "relu", "max_pool2d", "flatten", "linear", "sigmoid",
                                        "binary_cross_entropy"]
    assert layers["two_conv_blocks"] == ["conv2d", "relu", "max_pool2d"] * 2 + ["flatten", "linear", "cross_entropy"]
    assert layers["strided_conv_avg_pool"] == ["conv2d", "avg_pool2d", "flatten", "linear", "mse_loss"]
    strided = load_model(SHIPPED["strided_conv_avg_pool"]).layers[0].hparams
    assert strided["stride"] == (2, 2) and strided["padding"] == (1, 1)


def test_built_in_layers_pass_every_shipped_network_in_both_dtypes():
    runs = _check(None, load_models(None))
    assert {(r.model.name, r.dtype) for r in runs} == {(n, d) for n in SHIPPED for d in ("float32", "float64")}
    for run in runs:
        assert run.status == "passed", (run.model.name, run.dtype, run.located)
        assert len(run.user_losses) == run.model.steps
        # training lowers the loss on the synthetic data set, on both sides
        assert run.user_losses[-1] < run.user_losses[0] and run.reference_losses[-1] < run.reference_losses[0]
    adam = next(r for r in runs if r.model.name == "two_conv_blocks")
    assert "adam_step" in adam.update_rule


# --- the torch twin, against independent arithmetic ------------------------------------------------

def test_the_twin_gradient_matches_finite_differences_of_its_own_loss():
    model = dataclasses.replace(load_model(SHIPPED["derivation_cnn"]), steps=1)
    data = make_parameters(model)
    data["x"], data["target"] = make_data(model)
    twin = twin_trajectory(model, data, "float64")["reference"][0]
    rng = np.random.default_rng(0)
    for name in ("W1", "b2"):
        for index in [tuple(int(rng.integers(s)) for s in data[name].shape) for _ in range(3)]:
            losses = []
            for sign in (1, -1):
                shifted = {k: v.copy() for k, v in data.items()}
                shifted[name][index] += sign * 1e-6
                losses.append(float(twin_trajectory(model, shifted, "float64")["reference"][0]["loss"]))
            assert twin["grads"][name][index] == pytest.approx((losses[0] - losses[1]) / 2e-6, rel=1e-5, abs=1e-9)


def test_the_twin_plain_sgd_step_is_w_minus_lr_times_the_gradient():
    model = load_model(SHIPPED["strided_conv_avg_pool"])
    data = make_parameters(model)
    data["x"], data["target"] = make_data(model)
    steps = twin_trajectory(model, data, "float64")["reference"]
    for name in model.parameters:
        np.testing.assert_allclose(steps[0]["updated"][name], data[name] - model.lr * steps[0]["grads"][name],
                                   rtol=0, atol=1e-15)
        np.testing.assert_allclose(steps[1]["updated"][name],
                                   steps[0]["updated"][name] - model.lr * steps[1]["grads"][name], rtol=0, atol=1e-15)


def test_targets_and_parameters_are_seeded_and_rounded_per_dtype():
    model = load_model(SHIPPED["two_conv_blocks"])
    first, second = make_parameters(model), make_parameters(model)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    x, target = make_data(model)
    assert target.dtype == np.int64 and target.shape == (4,) and set(np.unique(target)) <= {0, 1, 2}
    rounded = at_dtype({"x": x, "target": target}, "float32")
    assert rounded["x"].dtype == np.float32 and rounded["target"].dtype == np.int64


# --- planted wiring mistakes, located ---------------------------------------------------------------

def test_a_flatten_that_does_not_invert_its_reshape_is_named(tmp_path):
    impl = _module(tmp_path, "wrong_flatten", WRONG_FLATTEN)
    run = _check(impl, [load_model(SHIPPED["derivation_cnn"])], ("float64",))[0]
    assert run.status == "failed"
    assert "layer 3 (flatten) backward" in run.located, run.located
    rows = _rows(run)
    assert rows["L3.grad_input"]["status"] == "failed" and rows["L4.grad_input"]["status"] == "passed"
    assert rows["L2.grad_input"]["status"] == "failed"  # the mistake spreads back, the locator does not follow it
    assert rows["loss"]["status"] == "passed" and rows["grad_W2"]["status"] == "passed"


def test_a_pooled_gradient_sent_to_the_wrong_sample_is_named(tmp_path):
    impl = _module(tmp_path, "wrong_sample_pool", WRONG_SAMPLE_POOL)
    runs = _check(impl, [load_model(SHIPPED["derivation_cnn"]), load_model(SHIPPED["two_conv_blocks"])], ("float32",))
    assert "layer 2 (max_pool2d) backward" in runs[0].located, runs[0].located
    # in two blocks, the pool nearest the loss is the first one met walking back
    assert "layer 5 (max_pool2d) backward" in runs[1].located, runs[1].located


def test_a_correct_cs231n_style_model_class_passes(tmp_path):
    impl = _module(tmp_path, "cnn", three_layer_convnet())
    runs = _check(impl, [load_model(SHIPPED["three_layer_convnet"])])
    for run in runs:
        assert run.style == "class" and "class ThreeLayerConvNet" in run.implementation
        assert run.status == "passed", (run.dtype, run.located)
        assert set(_rows(run)) == {"loss", *(f"{w}_{p}" for w in ("grad", "updated")
                                              for p in ("W1", "b1", "W2", "b2", "W3", "b3"))}


def test_regularisation_missing_from_one_gradient_is_named(tmp_path):
    impl = _module(tmp_path, "cnn_no_reg", three_layer_convnet(reg_in_dw2=False))
    run = _check(impl, [load_model(SHIPPED["three_layer_convnet"])], ("float64",))[0]
    assert run.status == "failed"
    assert "grad_W2 (layer 4 (linear) weight)" in run.located, run.located
    assert "missing from grad_W2" in run.located
    assert "grad_W1" not in run.located and "grad_W3" not in run.located
    assert _rows(run)["loss"]["status"] == "passed"


def test_a_model_class_without_reg_in_the_twin_would_fail(tmp_path):
    # The twin adds 0.5 * reg * sum(W**2): the same correct class checked with reg = 0 in the model file
    # still passes, and with another reg_scale fails on the loss: the term is really compared.
    impl = _module(tmp_path, "cnn_scale", three_layer_convnet())
    model = dataclasses.replace(load_model(SHIPPED["three_layer_convnet"]), reg_scale=1.0)
    run = _check(impl, [model], ("float64",))[0]
    assert run.status == "failed" and "the loss disagrees" in run.located


def test_adam_without_bias_correction_is_named_as_the_update_rule(tmp_path):
    impl = _module(tmp_path, "adam_no_bias", ADAM_NO_BIAS_CORRECTION)
    run = _check(impl, [load_model(SHIPPED["two_conv_blocks"])], ("float64",))[0]
    rows = _rows(run)
    assert all(rows[f"grad_{p}"]["status"] == "passed" for p in run.model.parameters)
    assert rows["updated_W1"]["status"] == "failed"
    assert "update rule" in run.located and "adam_no_bias.adam_step" in run.located, run.located
    assert "torch.optim.Adam" in run.located and "its step matches Adam without bias correction" in run.located


def test_a_model_class_trained_with_its_own_cs231n_adam_passes(tmp_path):
    impl = _module(tmp_path, "cnn_adam", three_layer_convnet() + CS231N_ADAM)
    model = dataclasses.replace(load_model(SHIPPED["three_layer_convnet"]), rule="adam", hyper={"lr": 0.01})
    run = _check(impl, [model], ("float64",))[0]
    assert run.status == "passed", run.located
    assert "cnn_adam.adam" in run.update_rule and run.style == "class"
    assert run.user_losses[-1] < run.user_losses[0]


# --- containment and the command -------------------------------------------------------------------

def test_an_exception_in_a_layer_becomes_error_rows_naming_it(tmp_path):
    impl = _module(tmp_path, "raises", RAISES_IN_RELU)
    run = _check(impl, [load_model(SHIPPED["derivation_cnn"])], ("float64",))[0]
    assert run.status == "error" and {r["status"] for r in run.records} == {"error"}
    assert "layer 1 (relu) backward raised RuntimeError: relu backward is not written yet" in run.located
    assert "relu_backward" in run.traceback


def test_a_model_that_calls_torch_fails_unless_allowed(tmp_path):
    impl = _module(tmp_path, "uses_torch", USES_TORCH)
    model = dataclasses.replace(load_model(SHIPPED["derivation_cnn"]), steps=1)
    refused = _check(impl, [model], ("float64",), allow_frameworks=False)[0]
    reason = refused.records[0]["reason"]
    assert refused.status == "failed" and reason.startswith("the implementation imported") and "torch" in reason
    allowed = check_models(impl, [model], ("float64",), executor=InlineExecutor(), oracle=InlineExecutor(),
                           allow_frameworks=True)[0]
    assert allowed.status == "passed"


def test_the_command_isolates_a_hang_and_reports_every_model(tmp_path):
    impl = _module(tmp_path, "hangs", HANGS_IN_LINEAR)
    out = tmp_path / "out"
    code = main(["network", "--impl", impl, "--model", "derivation_cnn,strided_conv_avg_pool", "--dtype", "float64",
                 "--timeout", "3", "--steps", "2", "--out", str(out)])
    assert code == 1
    frame = pd.read_csv(out / "network.csv")
    assert set(frame["model"]) == {"derivation_cnn", "strided_conv_avg_pool"}
    assert set(frame["status"]) == {"error"} and frame["reason"].str.contains("timed out after 3 s").all()
    assert set(frame["step"]) == {0, 1}


def test_the_command_writes_the_report_and_the_loss_curves(tmp_path):
    out = tmp_path / "out"
    code = main(["network", "--allow-frameworks", "--impl", _module(tmp_path, "wrong_flatten_cli", WRONG_FLATTEN), "--model",
                 str(SHIPPED["derivation_cnn"]), "--out", str(out)])
    assert code == 1
    frame = pd.read_csv(out / "network.csv")
    assert list(frame.columns[:7]) == ["model", "dtype", "step", "tensor", "layer", "status", "reason"]
    assert set(frame["dtype"]) == {"float32", "float64"} and set(frame["step"]) == set(range(5))
    summary = (out / "network.md").read_text(encoding="utf-8")
    assert "layer 3 (flatten) backward" in summary
    payload = json.loads((out / "network.json").read_text(encoding="utf-8"))
    assert len(payload["runs"]) == 2 and len(payload["runs"][0]["user_losses"]) == 5
    assert (out / "network_derivation_cnn_loss.png").read_bytes().startswith(b"\x89PNG")


def test_a_malformed_model_file_names_the_file_and_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('input = [2, 1, 4, 4]\n[[layers]]\nlayer = "conv2d"\nout_channels = 2\nkernel_size = 3\n'
                    'strides = 2\n[[layers]]\nlayer = "mse_loss"\n', encoding="utf-8")
    with pytest.raises(CaseFileError, match=r"bad.toml: layers\[0\].strides: conv2d has no such hyperparameter"):
        load_model(path)
    assert main(["network", "--model", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "strides" in capsys.readouterr().err
    assert main(["network", "--model", "no_such_model", "--out", str(tmp_path / "out")]) == 2
