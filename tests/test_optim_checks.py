"""The update rules through `refcheck run`'s path: the built-ins, planted mistakes, CS231n's optim.py.

The implementations below are written here, independently of refcheck's own rules and of the
diagnosis, and checked through ``refcheck.execution.sweep.check`` on the shipped case file (five
steps, the state carried, float32 and float64, zero, tiny and huge gradients). A planted mistake
must fail exactly the cases it changes, each failing row carrying the diagnosis that names it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from refcheck.execution.sweep import check, plan_sweep

RULES = ["sgd", "rmsprop", "adam", "adamw"]

# A second, independent numpy version of torch.optim's rules; the upper-case names are switches
# that plant one mistake each.
TEMPLATE = '''
import numpy as np

def sgd_step(param, grad, state, *, lr, momentum, dampening, nesterov, weight_decay, maximize):
    g = (-grad if maximize else grad) + weight_decay * param
    new_state = {}
    if momentum != 0:
        old = state.get("momentum_buffer")
        buf = g.copy() if old is None else momentum * old + (1 - dampening) * g
        new_state["momentum_buffer"] = buf
        g = g + momentum * buf if (nesterov and not IGNORE_NESTEROV) else buf
    return param - lr * g, new_state

def rmsprop_step(param, grad, state, *, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    g = (-grad if maximize else grad) + weight_decay * param
    zeros = np.zeros_like(param)
    sq = alpha * state.get("square_avg", zeros) + (1 - alpha) * g * g
    new_state = {"step": state.get("step", 0) + 1, "square_avg": sq}
    var = sq
    if centered:
        ga = alpha * state.get("grad_avg", zeros) + (1 - alpha) * g
        new_state["grad_avg"] = ga
        var = sq - ga * ga
    avg = np.sqrt(var + eps) if EPS_INSIDE else np.sqrt(var) + eps
    if momentum > 0:
        buf = momentum * state.get("momentum_buffer", zeros) + g / avg
        new_state["momentum_buffer"] = buf
        return param - lr * buf, new_state
    return param - lr * g / avg, new_state

def _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    beta1, beta2 = betas
    t = state.get("step", 0) + 1
    g = -grad if maximize else grad
    if decoupled:
        param = param * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * param
    zeros = np.zeros_like(param)
    m = beta1 * state.get("exp_avg", zeros) + (1 - beta1) * g
    v = beta2 * state.get("exp_avg_sq", zeros) + (1 - beta2) * g * g
    new_state = {"step": t, "exp_avg": m, "exp_avg_sq": v}
    if amsgrad:
        v = np.maximum(state.get("max_exp_avg_sq", zeros), v)
        new_state["max_exp_avg_sq"] = v
    if not NO_BIAS_CORRECTION:
        m, v = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    denom = np.sqrt(v + eps) if EPS_INSIDE else np.sqrt(v) + eps
    return param - lr * m / denom, new_state

def adam_step(param, grad, state, *, lr, betas, eps, weight_decay, amsgrad, maximize):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, maximize, False)

def adamw_step(param, grad, state, *, lr, betas, eps, weight_decay, amsgrad, maximize):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, maximize, not ADAMW_AS_L2)
'''
SWITCHES = ("IGNORE_NESTEROV", "EPS_INSIDE", "NO_BIAS_CORRECTION", "ADAMW_AS_L2")


def _source(planted: str = "") -> str:
    source = TEMPLATE
    for switch in SWITCHES:
        source = source.replace(switch, str(switch == planted))
    return source


def _check(tmp_path: Path, source: str, name: str = "rules.py", layers=RULES) -> pd.DataFrame:
    impl = tmp_path / name
    impl.write_text(source, encoding="utf-8")
    return check(impl=str(impl), layers=layers, workers=0, selfcheck=False)


@pytest.fixture(scope="module")
def builtin():
    return check(layers=RULES, workers=0)


def test_builtin_update_rules_pass_every_case(builtin):
    assert (builtin["status"] == "passed").all(), builtin.loc[builtin["status"] != "passed", ["case", "tensor", "reason"]]
    for rule in RULES:
        rows = builtin[builtin["layer"] == rule]
        assert rows["case"].nunique() >= 10, rule
        assert set(rows["dtype"]) == {"float32", "float64"}, rule
        assert set(rows["values"]) == {"normal", "zeros", "tiny", "huge"}, rule


def test_compared_tensors_are_each_step_and_the_final_state(builtin):
    adam = builtin[builtin["case"].str.startswith("adam[") & builtin["case"].str.contains("-amsT-")]
    one = adam[adam["case"] == adam["case"].iloc[0]]
    assert list(one["tensor"]) == [f"param_step{k}" for k in range(1, 6)] + [
        "state_exp_avg", "state_exp_avg_sq", "state_max_exp_avg_sq"]
    sgd = builtin[builtin["layer"] == "sgd"]
    without_momentum = sgd[sgd["momentum"].astype(float) == 0]
    assert not without_momentum.empty and "state_momentum_buffer" not in set(without_momentum["tensor"])
    assert not builtin["tensor"].str.startswith("grad_").any()
    assert builtin["selfcheck"].isna().all() or (builtin["selfcheck"].fillna("") == "").all()
    assert set(builtin["grads_shape"]) >= {"(5, 3, 4)", "(5, 7)"}


def test_independent_rules_pass_every_case(tmp_path):
    frame = _check(tmp_path, _source())
    assert (frame["status"] == "passed").all(), frame.loc[frame["status"] != "passed", ["case", "tensor", "reason"]]


# (switch, the rules it breaks, the cases it may change, the cases it must change, the diagnosis).
# Which cases a mistake changes beyond rounding depends on magnitudes (tiny gradients, 1e-30, move
# a parameter of size 1 by far less than its rounding, unless weight decay adds to them; eps = 1e-8
# inside the square root shows in float64, or in float32 where the second moment is small), so
# the failures must lie between a lower and an upper bound read from the hyperparameters.
PLANTED = [
    ("IGNORE_NESTEROV", {"sgd"}, lambda row: row["nesterov"] == "True",
     lambda row: row["nesterov"] == "True" and row["values"] != "tiny", "nesterov=True ignored"),
    ("NO_BIAS_CORRECTION", {"adam", "adamw"}, lambda row: True,
     lambda row: row["values"] != "tiny", "without bias correction"),
    ("ADAMW_AS_L2", {"adamw"}, lambda row: float(row["weight_decay"]) != 0,
     lambda row: float(row["weight_decay"]) != 0, "applied as an L2 term"),
    ("EPS_INSIDE", {"adam", "adamw", "rmsprop"}, lambda row: row["values"] != "huge",
     lambda row: row["values"] == "normal" and (float(row["eps"]) == 1e-3 or row["dtype"] == "float64"),
     "eps inside the square root"),
]


@pytest.mark.parametrize(("switch", "rules", "may", "must", "diagnosis"), PLANTED, ids=[p[0] for p in PLANTED])
def test_planted_mistake_fails_where_it_should_with_its_diagnosis(tmp_path, switch, rules, may, must, diagnosis):
    frame = _check(tmp_path, _source(switch))
    per_case = frame.drop_duplicates("case").astype(str)
    allowed = {row["case"] for _, row in per_case.iterrows() if row["layer"] in rules and may(row)}
    required = {row["case"] for _, row in per_case.iterrows() if row["layer"] in rules and must(row)}
    failed = frame[frame["status"] != "passed"]
    assert (failed["status"] == "failed").all()
    assert len(required) >= 3
    assert required <= set(failed["case"]) <= allowed, (required - set(failed["case"]), set(failed["case"]) - allowed)
    undiagnosed = failed[~failed["diagnosis"].fillna("").str.contains(diagnosis, regex=False)]
    assert undiagnosed.empty, undiagnosed[["case", "tensor", "diagnosis"]]


def test_step_that_updates_in_place_is_reported(tmp_path):
    source = _source().replace("    return param - lr * g, new_state", "    param -= lr * g\n    return param, new_state")
    frame = _check(tmp_path, source, layers=["sgd"])
    moved = frame[frame["values"] != "tiny"]   # a tiny step leaves the parameter as it was
    assert not moved.empty and (moved["status"] == "failed").all()
    assert moved["reason"].str.contains("step 1 mutated its input 'param' in place").all()


def test_step_that_returns_no_state_is_an_error(tmp_path):
    source = "def adam_step(param, grad, state, *, lr, betas, eps):\n    return param - lr * grad\n"
    frame = _check(tmp_path, source, layers=["adam"])
    ran = frame[frame["status"] != "skipped"]
    assert not ran.empty and (ran["status"] == "error").all()
    assert ran["reason"].str.contains("step 1 must return (new_param, new_state dict)", regex=False).all()


# ------------------------------------------------------------------- CS231n's optim.py

CS231N = '''
import numpy as np

def sgd(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    w -= config["learning_rate"] * dw
    return w, config

def sgd_momentum(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config

def rmsprop(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("cache", np.zeros_like(w))
    config["cache"] = config["decay_rate"] * config["cache"] + (1 - config["decay_rate"]) * dw ** 2
    return w - config["learning_rate"] * dw / (np.sqrt(config["cache"]) + config["epsilon"]), config

def adam(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)
    config["t"] += 1
    beta1, beta2 = config["beta1"], config["beta2"]
    config["m"] = beta1 * config["m"] + (1 - beta1) * dw
    config["v"] = beta2 * config["v"] + (1 - beta2) * dw ** 2
    m_hat = config["m"] / (1 - beta1 ** config["t"])
    v_hat = config["v"] / (1 - beta2 ** config["t"])
    return w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"]), config
'''


def test_cs231n_optim_passes_through_the_adapter(tmp_path):
    frame = _check(tmp_path, CS231N, name="optim.py", layers=["sgd", "rmsprop", "adam"])
    assert (frame["status"] == "passed").all(), frame.loc[frame["status"] != "passed", ["case", "tensor", "reason"]]
    assert frame["implementation"].str.contains("adapter cs231n").all()
    sgd = frame[frame["layer"] == "sgd"]
    momenta = set(sgd["momentum"].astype(float))
    assert 0.0 in momenta and len(momenta) > 1   # sgd for momentum 0, sgd_momentum for the others
    assert (sgd.loc[sgd["momentum"].astype(float) != 0, "tensor"] == "state_momentum_buffer").any()
    plan = plan_sweep(str(tmp_path / "optim.py"), ["sgd", "rmsprop", "adam"])
    assert "nesterov" in plan.unsupported["sgd"] and "amsgrad" in plan.unsupported["adam"]


def test_cs231n_velocity_without_the_learning_rate_fails_the_momentum_buffer(tmp_path):
    # torch's convention inside a CS231n function: the step is right, the state is not CS231n's.
    source = CS231N.replace(
        '    v = config["momentum"] * v - config["learning_rate"] * dw\n    config["velocity"] = v\n    return w + v, config',
        '    v = config["momentum"] * v + dw\n    config["velocity"] = v\n    return w - config["learning_rate"] * v, config')
    frame = _check(tmp_path, source, name="optim.py", layers=["sgd"])
    moving = frame[frame["momentum"].astype(float) != 0]
    buffers = moving[moving["tensor"] == "state_momentum_buffer"]
    assert not buffers.empty and (buffers["status"] == "failed").all()
    assert (moving.loc[moving["tensor"].str.startswith("param_step1"), "status"] == "passed").all()


def test_inspect_describes_update_rules_without_a_missing_backward(tmp_path):
    from refcheck.adapters.inspect_report import inspect_text
    from refcheck.execution.implementation import load_implementation

    (tmp_path / "optim.py").write_text(CS231N, encoding="utf-8")
    implementation = load_implementation(str(tmp_path / "optim.py"))
    text = inspect_text(implementation.name, implementation.layers, implementation.discovery)
    assert "sgd: optim.sgd, optim.sgd_momentum" in text
    assert text.count("CS231n update rule (w, dw, config) -> (next_w, config)") == 3
    assert "MISSING" not in text and "momentum: any value" in text and "nesterov: False only" in text
