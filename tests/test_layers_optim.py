"""Tests of refcheck.layers.optim against torch.optim (single-tensor path, foreach=False).

Every check runs five consecutive steps with the state carried from step to step and compares
the parameter and every state entry after each step with torch at the same dtype. The rules
follow torch's operation order, so the only differences left are fused multiply-adds that torch's
vectorised CPU kernels use and numpy does not: a fraction of an ulp of the tensor's magnitude.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
import torch

from refcheck.layers.optim import (
    UPDATE_RULES,
    adam_step,
    adamw_step,
    rmsprop_step,
    sgd_step,
)

DTYPES = [np.float32, np.float64]
DTYPE_IDS = {"ids": lambda d: np.dtype(d).name}
TORCH_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
STEPS = 5
SHAPE = (3, 7)
# Gradient scale per step: uneven, so that AMSGrad's running maximum differs from exp_avg_sq.
STEP_SCALES = (1.0, 0.1, 2.0, 0.05, 1.0)
# Allowed difference from torch at the same dtype, in units of eps * (|expected| + the tensor's
# largest magnitude). Measured differences stay below 1.5; a wrong formula is off by far more.
ULPS = 8

Rule = Callable[..., tuple[np.ndarray, dict[str, Any]]]


def _hyper_id(hyper: Mapping[str, Any]) -> str:
    return "-".join(f"{key}={value}" for key, value in hyper.items()) or "defaults"


CASES = [
    ("sgd", {}),
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "maximize": True}),
    ("sgd", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    ("rmsprop", {}),
    ("rmsprop", {"lr": 0.02, "alpha": 0.9, "eps": 1e-6}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"alpha": 0.3, "centered": True}),  # 1 - alpha >= 0.5: lerp's other branch
    ("rmsprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.1, "maximize": True}),
    ("adam", {}),
    ("adam", {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adam", {"betas": (0.3, 0.5)}),  # 1 - beta1 >= 0.5: lerp's other branch
    ("adam", {"weight_decay": 0.1}),
    ("adam", {"amsgrad": True}),
    ("adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    ("adamw", {}),
    ("adamw", {"lr": 0.1, "weight_decay": 0.5}),
    ("adamw", {"weight_decay": 0.0}),
    ("adamw", {"lr": 0.05, "amsgrad": True, "maximize": True}),
]
CASE_IDS = [f"{rule}[{_hyper_id(hyper)}]" for rule, hyper in CASES]
# One case per rule with every option on, for the special-value tests.
EVERYTHING_ON = {
    "sgd": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True},
    "rmsprop": {"momentum": 0.5, "centered": True, "weight_decay": 0.1, "maximize": True},
    "adam": {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "maximize": True},
    "adamw": {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "maximize": True},
}


# ------------------------------------------------------------------------------------ helpers


def make_problem(dtype: type, seed: int, scales=STEP_SCALES) -> tuple[np.ndarray, list[np.ndarray]]:
    """A random parameter and one random gradient per step, each step at its own scale."""
    rng = np.random.default_rng(seed)
    param = rng.standard_normal(SHAPE).astype(dtype)
    grads = [(rng.standard_normal(SHAPE) * scale).astype(dtype) for scale in scales]
    return param, grads


def torch_trajectory(
    rule: str, hyper: Mapping[str, Any], param: np.ndarray, grads: list[np.ndarray]
) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """(parameter, state) after each step of torch.optim on the single-tensor path."""
    tensor = torch.tensor(param.copy(), requires_grad=True)
    optimizer = TORCH_OPTIMIZERS[rule]([tensor], foreach=False, **hyper)
    trajectory = []
    for grad in grads:
        tensor.grad = torch.tensor(grad.copy())
        optimizer.step()
        state = {
            key: int(value.item()) if key == "step" else value.detach().numpy().copy()
            for key, value in optimizer.state[tensor].items()
        }
        trajectory.append((tensor.detach().numpy().copy(), state))
    return trajectory


def _arrays_of(state: Mapping[str, Any]) -> list[np.ndarray]:
    return [value for value in state.values() if isinstance(value, np.ndarray)]


def numpy_trajectory(
    step: Rule, hyper: Mapping[str, Any], param: np.ndarray, grads: list[np.ndarray]
) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """(parameter, state) after each call of ``step``; checks each call is pure."""
    state: dict[str, Any] = {}
    trajectory = []
    for index, grad in enumerate(grads):
        inputs = [param, grad, *_arrays_of(state)]
        before = [array.copy() for array in inputs]
        state_before = dict(state)
        new_param, new_state = step(param, grad, state, **hyper)
        for original, now in zip(before, inputs):
            np.testing.assert_array_equal(now, original, err_msg=f"step {index}: input mutated")
        assert state.keys() == state_before.keys() and all(
            state[key] is value for key, value in state_before.items()
        ), f"step {index}: the state dict passed in was changed"
        assert new_state is not state, f"step {index}: the state dict passed in was returned"
        for output in [new_param, *_arrays_of(new_state)]:
            assert not any(np.shares_memory(output, array) for array in inputs), (
                f"step {index}: a returned array shares memory with an input"
            )
        trajectory.append((new_param, new_state))
        param, state = new_param, new_state
    return trajectory


def assert_close_to_torch(actual: Any, expected: np.ndarray, dtype: type, what: str) -> None:
    """``actual`` within ULPS of ``expected``, relative to the tensor's magnitude.

    Infinities and NaNs must sit at the same places; zeros of ``expected`` everywhere demand
    exact zeros.
    """
    assert isinstance(actual, np.ndarray), f"{what}: {type(actual).__name__}, expected ndarray"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(
        np.where(finite, 0, actual), np.where(finite, 0, expected), err_msg=f"{what}: non-finite"
    )
    actual, expected = actual[finite], expected[finite]
    if expected.size == 0:
        return
    eps = float(np.finfo(dtype).eps)
    scale = float(np.max(np.abs(expected)))
    allowed = ULPS * eps * (np.abs(expected) + scale)
    excess = np.abs(actual.astype(np.float64) - expected) > allowed
    if excess.any():
        worst = int(np.argmax(np.abs(actual.astype(np.float64) - expected) - allowed))
        raise AssertionError(
            f"{what}: {int(excess.sum())} / {excess.size} elements differ from torch by more "
            f"than {ULPS} ulps of the tensor's magnitude; worst: {actual[worst]!r} vs "
            f"{expected[worst]!r}"
        )


def check_against_torch(
    step: Rule, rule: str, hyper: Mapping[str, Any], dtype: type, *, seed: int = 0,
    scales=STEP_SCALES,
) -> None:
    param, grads = make_problem(dtype, seed, scales)
    expected = torch_trajectory(rule, hyper, param, grads)
    actual = numpy_trajectory(step, hyper, param, grads)
    label = f"{rule}({_hyper_id(hyper)}, {np.dtype(dtype).name})"
    for index, ((param_out, state_out), (param_ref, state_ref)) in enumerate(zip(actual, expected)):
        where = f"{label} after step {index + 1}"
        assert sorted(state_out) == sorted(state_ref), (
            f"{where}: state keys {sorted(state_out)}, torch has {sorted(state_ref)}"
        )
        assert_close_to_torch(param_out, param_ref, dtype, f"{where}: param")
        for key, value in state_ref.items():
            if key == "step":
                assert state_out[key] == value, f"{where}: step {state_out[key]} != {value}"
            else:
                assert_close_to_torch(state_out[key], value, dtype, f"{where}: state[{key!r}]")


# ------------------------------------------------------------------------- against torch.optim


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize(("rule", "hyper"), CASES, ids=CASE_IDS)
def test_five_steps_match_torch(rule, hyper, dtype):
    check_against_torch(UPDATE_RULES[rule], rule, hyper, dtype, seed=len(CASE_IDS[0]))


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("scale", [0.0, 1e-30], ids=["zero-grad", "tiny-grad"])
@pytest.mark.parametrize("rule", sorted(EVERYTHING_ON))
def test_special_gradient_scales_match_torch(rule, scale, dtype):
    # float32: 1e-30 squared underflows to 0, so Adam's and RMSprop's denominators are eps alone.
    check_against_torch(
        UPDATE_RULES[rule], rule, EVERYTHING_ON[rule], dtype, seed=3, scales=(scale,) * STEPS
    )
    check_against_torch(UPDATE_RULES[rule], rule, {}, dtype, seed=4, scales=(scale,) * STEPS)


@pytest.mark.parametrize("rule", sorted(EVERYTHING_ON))
def test_huge_gradients_match_torch_float64(rule):
    check_against_torch(
        UPDATE_RULES[rule], rule, EVERYTHING_ON[rule], np.float64, seed=5, scales=(1e30,) * STEPS
    )


def test_update_rules_table():
    assert UPDATE_RULES == {
        "sgd": sgd_step, "rmsprop": rmsprop_step, "adam": adam_step, "adamw": adamw_step
    }


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
def test_zero_dimensional_param_gives_arrays(rule):
    param, grad = np.array(0.5, dtype=np.float32), np.array(-0.25, dtype=np.float32)
    hyper = {"momentum": 0.9} if rule in ("sgd", "rmsprop") else {"amsgrad": True}
    state: dict[str, Any] = {}
    for _ in range(2):
        param, state = UPDATE_RULES[rule](param, grad, state, **hyper)
        assert isinstance(param, np.ndarray) and param.shape == () and param.dtype == np.float32
        for value in _arrays_of(state):
            assert value.shape == () and value.dtype == np.float32


# -------------------------------------------------------------------------- validity and state

# (rule, hyperparameters) that torch.optim's constructors reject.
INVALID = [
    ("sgd", {"lr": -0.1}),
    ("sgd", {"momentum": -0.5}),
    ("sgd", {"weight_decay": -1e-4}),
    ("sgd", {"nesterov": True}),
    ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
    ("rmsprop", {"lr": -0.1}),
    ("rmsprop", {"alpha": -0.5}),
    ("rmsprop", {"eps": -1e-8}),
    ("rmsprop", {"momentum": -0.5}),
    ("rmsprop", {"weight_decay": -1e-4}),
    ("rmsprop", {"lr": math.nan}),
    ("adam", {"lr": -1e-3}),
    ("adam", {"betas": (1.0, 0.999)}),
    ("adam", {"betas": (0.9, 1.0)}),
    ("adam", {"betas": (-0.1, 0.999)}),
    ("adam", {"eps": -1e-8}),
    ("adam", {"weight_decay": -1e-4}),
    ("adamw", {"betas": (0.9, 1.5)}),
    ("adamw", {"weight_decay": -0.01}),
]
# Edge values torch.optim accepts (and so must the rules).
VALID_EDGES = [
    ("sgd", {"lr": 0.0, "momentum": 0.9, "dampening": -0.5}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 1.0}),
    ("sgd", {"lr": math.nan}),  # SGD checks `lr < 0`, which NaN passes
    ("rmsprop", {"alpha": 1.5}),  # no upper bound on alpha
    # Not centered: with alpha = 0 the centered variance is g*g - g*g, which torch computes
    # with a fused multiply-add on AVX CPUs as the rounding error of g*g (NaN when negative).
    ("rmsprop", {"alpha": 0.0, "eps": 0.0}),
    ("adam", {"betas": (0.0, 0.0), "eps": 0.0}),
    ("adamw", {"lr": 0.0, "weight_decay": 0.0}),
]


@pytest.mark.parametrize(
    ("rule", "hyper"), INVALID, ids=[f"{r}[{_hyper_id(h)}]" for r, h in INVALID]
)
def test_invalid_hyperparameters_rejected_like_torch(rule, hyper):
    with pytest.raises(ValueError):
        TORCH_OPTIMIZERS[rule]([torch.zeros(2, requires_grad=True)], **hyper)
    with pytest.raises(ValueError):
        UPDATE_RULES[rule](np.zeros(2), np.ones(2), {}, **hyper)


@pytest.mark.parametrize(
    ("rule", "hyper"), VALID_EDGES, ids=[f"{r}[{_hyper_id(h)}]" for r, h in VALID_EDGES]
)
def test_edge_hyperparameters_accepted_like_torch(rule, hyper):
    TORCH_OPTIMIZERS[rule]([torch.zeros(2, requires_grad=True)], **hyper)
    check_against_torch(UPDATE_RULES[rule], rule, hyper, np.float64, seed=6)


def test_state_from_other_hyperparameters_is_named():
    _, state = adam_step(np.ones(3), np.ones(3), {})
    with pytest.raises(KeyError, match="max_exp_avg_sq"):
        adam_step(np.ones(3), np.ones(3), state, amsgrad=True)
    _, state = rmsprop_step(np.ones(3), np.ones(3), {})
    with pytest.raises(KeyError, match="momentum_buffer"):
        rmsprop_step(np.ones(3), np.ones(3), state, momentum=0.9)


def test_shape_and_dtype_checks():
    with pytest.raises(ValueError, match="shape"):
        sgd_step(np.ones(3), np.ones(4), {}, lr=0.1)
    with pytest.raises(TypeError, match="floating"):
        sgd_step(np.ones(3, dtype=np.int64), np.ones(3), {}, lr=0.1)
    # A float64 gradient for a float32 parameter is used in the parameter's dtype.
    new_param, new_state = adam_step(np.ones(3, np.float32), np.ones(3), {})
    assert new_param.dtype == np.float32
    assert all(value.dtype == np.float32 for value in _arrays_of(new_state))


# ----------------------------------------------------------------------------- planted mistakes


def adam_without_bias_correction(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    beta1, beta2 = betas
    exp_avg = beta1 * state.get("exp_avg", 0.0) + (1 - beta1) * grad
    exp_avg_sq = beta2 * state.get("exp_avg_sq", 0.0) + (1 - beta2) * grad * grad
    new_state = {"step": state.get("step", 0) + 1, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    return param - lr * exp_avg / (np.sqrt(exp_avg_sq) + eps), new_state


def adam_eps_inside_sqrt(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    beta1, beta2 = betas
    step = state.get("step", 0) + 1
    exp_avg = beta1 * state.get("exp_avg", 0.0) + (1 - beta1) * grad
    exp_avg_sq = beta2 * state.get("exp_avg_sq", 0.0) + (1 - beta2) * grad * grad
    corrected_sq = exp_avg_sq / (1 - beta2**step)
    update = lr / (1 - beta1**step) * exp_avg / np.sqrt(corrected_sq + eps)
    return param - update, {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def rmsprop_eps_inside_sqrt(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8):
    square_avg = alpha * state.get("square_avg", 0.0) + (1 - alpha) * grad * grad
    new_state = {"step": state.get("step", 0) + 1, "square_avg": square_avg}
    return param - lr * grad / np.sqrt(square_avg + eps), new_state


def adamw_decay_as_l2(param, grad, state, **hyper):
    weight_decay = hyper.pop("weight_decay", 0.01)
    return adam_step(param, grad + weight_decay * param, state, **hyper)


def sgd_nesterov_ignored(param, grad, state, *, nesterov=False, **hyper):
    return sgd_step(param, grad, state, **hyper)


SMALL_GRADS = tuple(scale * 1e-4 for scale in STEP_SCALES)
# (mistake, wrong rule, torch rule, hyperparameters, gradient scales per step). eps inside the
# square root acts as a floor of sqrt(eps) = 1e-4 on the denominator: it shows with gradients
# near that size, and hides (below float32 rounding) with gradients near 1.
PLANTED = [
    ("adam without bias correction", adam_without_bias_correction, "adam", {}, STEP_SCALES),
    ("adam eps inside the square root", adam_eps_inside_sqrt, "adam", {}, SMALL_GRADS),
    ("rmsprop eps inside the square root", rmsprop_eps_inside_sqrt, "rmsprop", {}, SMALL_GRADS),
    ("adamw decay added to the gradient", adamw_decay_as_l2, "adamw", {"weight_decay": 0.1},
     STEP_SCALES),
    ("sgd nesterov ignored", sgd_nesterov_ignored, "sgd",
     {"lr": 0.1, "momentum": 0.9, "nesterov": True}, STEP_SCALES),
]


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize(
    ("mistake", "planted", "rule", "hyper", "scales"), PLANTED,
    ids=[p[0].replace(" ", "-") for p in PLANTED],
)
def test_planted_mistake_is_caught(mistake, planted, rule, hyper, scales, dtype):
    # The real rule passes the same check that the wrong one fails.
    check_against_torch(UPDATE_RULES[rule], rule, hyper, dtype, scales=scales)
    with pytest.raises(AssertionError, match="differ from torch"):
        check_against_torch(planted, rule, hyper, dtype, scales=scales)


# ------------------------------------------------------------------- CS231n-style update rules
#
# The update rules of the CS231n assignments, written here from their published formulas. Each
# takes (w, dw, config) and returns (next_w, config); config holds the hyperparameters under
# CS231n's names and the state (velocity, cache, m, v, t), filled with defaults on first use.


def cs231n_sgd(w, dw, config=None):
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    return w - config["learning_rate"] * dw, config


def cs231n_sgd_momentum(w, dw, config=None):
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    velocity = config.get("velocity", np.zeros_like(w))
    # The velocity carries the learning rate: v = mu * v - lr * dw.
    velocity = config["momentum"] * velocity - config["learning_rate"] * dw
    config["velocity"] = velocity
    return w + velocity, config


def cs231n_rmsprop(w, dw, config=None):
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    decay = config["decay_rate"]
    cache = decay * config.get("cache", np.zeros_like(w)) + (1 - decay) * dw**2
    config["cache"] = cache
    return w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"]), config


def cs231n_adam(w, dw, config=None):
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    beta1, beta2 = config["beta1"], config["beta2"]
    t = config.get("t", 0) + 1
    m = beta1 * config.get("m", np.zeros_like(w)) + (1 - beta1) * dw
    v = beta2 * config.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    config.update(t=t, m=m, v=v)
    return w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"]), config


# Each CS231n rule, its torch.optim counterpart's hyperparameters (from CS231n's config), and
# how CS231n's state reads in torch's terms.
CS231N_MAPPINGS = {
    "sgd": (cs231n_sgd, {"learning_rate": 0.05}, lambda c: {"lr": c["learning_rate"]}, {}),
    "sgd_momentum": (
        cs231n_sgd_momentum,
        {"learning_rate": 0.05, "momentum": 0.8},
        lambda c: {"lr": c["learning_rate"], "momentum": c["momentum"], "dampening": 0.0},
        {"velocity": lambda torch_state, c: -c["learning_rate"] * torch_state["momentum_buffer"]},
    ),
    "rmsprop": (
        cs231n_rmsprop,
        {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-6},
        lambda c: {"lr": c["learning_rate"], "alpha": c["decay_rate"], "eps": c["epsilon"]},
        {"cache": lambda torch_state, c: torch_state["square_avg"]},
    ),
    "adam": (
        cs231n_adam,
        {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6},
        lambda c: {"lr": c["learning_rate"], "betas": (c["beta1"], c["beta2"]),
                   "eps": c["epsilon"]},
        {
            "m": lambda torch_state, c: torch_state["exp_avg"],
            "v": lambda torch_state, c: torch_state["exp_avg_sq"],
            "t": lambda torch_state, c: torch_state["step"],
        },
    ),
}
TORCH_FOR_CS231N = {"sgd": "sgd", "sgd_momentum": "sgd", "rmsprop": "rmsprop", "adam": "adam"}


@pytest.mark.parametrize("name", sorted(CS231N_MAPPINGS))
def test_cs231n_rules_map_onto_torch(name):
    cs231n_rule, config, to_torch, state_map = CS231N_MAPPINGS[name]
    rule = TORCH_FOR_CS231N[name]
    param, grads = make_problem(np.float64, seed=7)
    expected = torch_trajectory(rule, to_torch(config), param, grads)
    w = param
    for index, (grad, (param_ref, state_ref)) in enumerate(zip(grads, expected)):
        w, config = cs231n_rule(w, grad, config)
        where = f"cs231n {name} after step {index + 1}"
        assert_close_to_torch(w, param_ref, np.float64, f"{where}: w")
        for key, from_torch in state_map.items():
            if key == "t":
                assert config["t"] == from_torch(state_ref, config), f"{where}: t"
            else:
                assert_close_to_torch(
                    config[key], from_torch(state_ref, config), np.float64, f"{where}: {key}"
                )
    # Also through the numpy rules, with the hyperparameters translated the same way.
    check_against_torch(UPDATE_RULES[rule], rule, to_torch(config), np.float64, seed=7)


def test_cs231n_velocity_keeps_the_old_learning_rate():
    # With a learning-rate change between steps the mapping v = -lr * buf no longer holds:
    # CS231n's velocity still carries the earlier rates, torch's buffer carries none.
    param, grads = make_problem(np.float64, seed=8)
    rates = [0.1, 0.1, 0.01, 0.01, 0.01]
    w, config = param, {"momentum": 0.9}
    torch_param, state = param, {}
    for rate, grad in zip(rates, grads):
        w, config = cs231n_sgd_momentum(w, grad, {**config, "learning_rate": rate})
        torch_param, state = sgd_step(torch_param, grad, state, lr=rate, momentum=0.9)
    assert not np.allclose(w, torch_param, rtol=1e-3, atol=1e-3)
    assert not np.allclose(config["velocity"], -rates[-1] * state["momentum_buffer"])


def test_adam_eps_before_bias_correction_differs_from_torch():
    # Adam's "efficient" form, lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps),
    # adds eps before the bias correction (eps_hat = eps * sqrt(1 - beta2**t)); torch and CS231n
    # add it after. With eps comparable to sqrt(v) the two visibly differ.
    def adam_eps_before_correction(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        beta1, beta2 = betas
        step = state.get("step", 0) + 1
        exp_avg = beta1 * state.get("exp_avg", 0.0) + (1 - beta1) * grad
        exp_avg_sq = beta2 * state.get("exp_avg_sq", 0.0) + (1 - beta2) * grad * grad
        step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
        new_param = param - step_size * exp_avg / (np.sqrt(exp_avg_sq) + eps)
        return new_param, {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}

    with pytest.raises(AssertionError, match="differ from torch"):
        check_against_torch(adam_eps_before_correction, "adam", {"eps": 1e-3}, np.float64)
