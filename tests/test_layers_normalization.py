"""Tests of the normalisation layers: torch autograd, loop twins, torch's edge cases, and
planted mistakes that the torch comparison must catch."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from twins_normalization import (
    batch_norm_loops,
    group_norm_loops,
    instance_norm_loops,
    layer_norm_loops,
)

from refcheck import layers as norm

OUTPUT_NAMES = ("output", "new_running_mean", "new_running_var")
GRAD_NAMES = ("grad_input", "grad_weight", "grad_bias")
# Layers whose forward returns (out, new_running_mean, new_running_var).
STATEFUL = {"batch_norm", "instance_norm"}


@dataclass(frozen=True)
class NormCase:
    """One configuration of one layer; ``id`` doubles as the pytest id."""

    layer: str
    input_shape: tuple[int, ...]
    hyper: tuple[tuple[str, object], ...]
    weight: bool = True
    bias: bool = True
    running: bool = True  # batch_norm / instance_norm: pass running statistics
    special: str = ""  # "", "constant" or "near_constant": one slice that shares statistics
    seed: int = 0

    @property
    def hyperparameters(self) -> dict:
        return dict(self.hyper)

    @property
    def param_shape(self) -> tuple[int, ...]:
        if self.layer == "layer_norm":
            return tuple(self.hyperparameters["normalized_shape"])
        return (self.input_shape[1],)

    @property
    def id(self) -> str:
        hyper = "-".join(f"{k}={v}" for k, v in self.hyper)
        affine = ("w" if self.weight else "") + ("b" if self.bias else "") or "noaffine"
        parts = [self.layer, "x".join(map(str, self.input_shape)), hyper, affine]
        if self.layer in STATEFUL and not self.running:
            parts.append("norunning")
        if self.special:
            parts.append(self.special)
        return "-".join(parts).replace(" ", "")


def _bn(shape, training=True, momentum=0.1, eps=1e-5, **kw):
    return NormCase("batch_norm", shape,
                    (("training", training), ("momentum", momentum), ("eps", eps)), **kw)


def _ln(shape, normalized_shape, eps=1e-5, **kw):
    return NormCase("layer_norm", shape,
                    (("normalized_shape", normalized_shape), ("eps", eps)), **kw)


def _gn(shape, num_groups, eps=1e-5, **kw):
    return NormCase("group_norm", shape, (("num_groups", num_groups), ("eps", eps)), **kw)


def _in(shape, use_input_stats=True, momentum=0.1, eps=1e-5, **kw):
    return NormCase(
        "instance_norm", shape,
        (("use_input_stats", use_input_stats), ("momentum", momentum), ("eps", eps)), **kw,
    )


CASES = [
    # batch_norm: (N, C), (N, C, L), (N, C, H, W); training and eval; affine or not
    _bn((5, 3), seed=1),
    _bn((4, 3, 5), momentum=0.3, seed=2),
    _bn((3, 2, 3, 4), seed=3),
    _bn((2, 3, 2, 3), bias=False, eps=1e-3, seed=4),
    _bn((4, 2, 3), weight=False, bias=False, running=False, seed=5),
    _bn((2, 2, 1, 1), momentum=1.0, seed=6),  # M = 2, the smallest torch trains on
    _bn((3, 3, 2, 2), special="constant", seed=7),
    _bn((4, 3, 2), special="near_constant", seed=8),
    _bn((5, 3), training=False, seed=9),
    _bn((2, 3, 2, 3), training=False, weight=False, seed=10),
    _bn((1, 3), training=False, seed=11),  # batch 1 is fine in eval mode
    _bn((1, 2, 1, 1), training=False, special="constant", seed=12),
    # layer_norm: 1 to 3 normalised axes
    _ln((4, 5), (5,), seed=21),
    _ln((2, 3, 4), (4,), bias=False, seed=22),
    _ln((2, 3, 4), (3, 4), seed=23),
    _ln((2, 2, 3, 2), (2, 3, 2), eps=1e-3, seed=24),
    _ln((3, 2, 4), (2, 4), weight=False, bias=False, seed=25),
    _ln((1, 6), (6,), seed=26),  # batch 1
    _ln((3, 1), (1,), seed=27),  # one value per row: xhat = 0
    _ln((3, 4, 2), (4, 2), special="constant", seed=28),
    _ln((3, 8), (8,), special="near_constant", seed=29),
    # group_norm
    _gn((2, 4), 2, seed=31),
    _gn((2, 6, 3), 3, seed=32),
    _gn((2, 4, 2, 3), 1, bias=False, seed=33),  # one group: layer norm over (C, H, W)
    _gn((2, 4, 3, 2), 4, seed=34),  # one channel per group: instance norm
    _gn((1, 6, 2, 2), 2, weight=False, bias=False, eps=1e-3, seed=35),  # batch 1
    _gn((2, 4), 4, seed=36),  # groups of one value (torch allows it when N > 1): out = bias
    _gn((2, 4, 3), 2, special="constant", seed=37),
    _gn((2, 4, 2, 2), 2, special="near_constant", seed=38),
    # instance_norm
    _in((2, 3, 4), seed=41),
    _in((2, 2, 3, 3), momentum=0.4, seed=42),
    _in((3, 2, 5), running=False, seed=43),
    _in((1, 3, 2, 2), weight=False, bias=False, seed=44),
    _in((2, 3, 4), use_input_stats=False, seed=45),
    _in((2, 2, 3, 2), use_input_stats=False, bias=False, seed=46),
    _in((2, 2, 3), special="constant", seed=47),
    _in((2, 2, 2, 3), special="near_constant", eps=1e-3, seed=48),
]
CASE_IDS = [case.id for case in CASES]


def _special_slice(case: NormCase) -> tuple:
    """The slice of ``x`` that shares one set of statistics, made (near) constant."""
    if case.layer == "batch_norm":
        return (slice(None), 0)
    if case.layer == "layer_norm":
        return (0,) * (len(case.input_shape) - len(case.param_shape))
    if case.layer == "group_norm":
        per_group = case.input_shape[1] // case.hyperparameters["num_groups"]
        return (0, slice(0, per_group))
    return (0, 0)


def make_inputs(case: NormCase, dtype: type) -> dict[str, np.ndarray | None]:
    """Seeded inputs, a random upstream gradient, and running statistics where they apply."""
    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal(case.input_shape) * 1.5 + 0.5
    if case.special:
        where = _special_slice(case)
        # 0.75 sums exactly in float32, so a constant slice has a variance of exactly 0.
        noise = 1e-3 if case.special == "near_constant" else 0.0  # variance ~1e-6 < eps
        x[where] = 0.75 + noise * rng.standard_normal(x[where].shape)
    inputs: dict[str, np.ndarray | None] = {"x": x}
    if case.layer in STATEFUL:
        channels = case.input_shape[1]
        inputs["running_mean"] = rng.standard_normal(channels) if case.running else None
        inputs["running_var"] = rng.uniform(0.5, 2.0, channels) if case.running else None
    inputs["weight"] = rng.standard_normal(case.param_shape) if case.weight else None
    inputs["bias"] = rng.standard_normal(case.param_shape) if case.bias else None
    inputs["dout"] = rng.standard_normal(case.input_shape)
    return {k: None if v is None else v.astype(dtype) for k, v in inputs.items()}


def _tensor_args(inputs: dict) -> list:
    return [inputs[k] for k in inputs if k != "dout"]


def torch_reference(case: NormCase, inputs: dict) -> tuple[tuple, tuple]:
    """torch autograd in float64: ((out, new_running_mean, new_running_var), grads)."""
    def leaf(name, grad):
        array = inputs.get(name)
        if array is None:
            return None
        return torch.tensor(array, dtype=torch.float64, requires_grad=grad)

    x, weight, bias = leaf("x", True), leaf("weight", True), leaf("bias", True)
    running_mean, running_var = leaf("running_mean", False), leaf("running_var", False)
    hyper = case.hyperparameters
    if case.layer == "batch_norm":
        out = F.batch_norm(x, running_mean, running_var, weight, bias, **hyper)
    elif case.layer == "instance_norm":
        out = F.instance_norm(x, running_mean, running_var, weight, bias, **hyper)
    elif case.layer == "layer_norm":
        out = F.layer_norm(x, hyper["normalized_shape"], weight, bias, eps=hyper["eps"])
    else:
        out = F.group_norm(x, hyper["num_groups"], weight, bias, eps=hyper["eps"])
    out.backward(torch.tensor(inputs["dout"], dtype=torch.float64))
    grads = tuple(None if t is None else t.grad.numpy() for t in (x, weight, bias))
    stats = tuple(None if t is None else t.numpy() for t in (running_mean, running_var))
    if case.layer not in STATEFUL:
        stats = ()
    return (out.detach().numpy(), *stats), grads


LAYERS: dict[str, tuple[Callable, Callable, Callable]] = {
    "batch_norm": (norm.batch_norm_forward, norm.batch_norm_backward, batch_norm_loops),
    "layer_norm": (norm.layer_norm_forward, norm.layer_norm_backward, layer_norm_loops),
    "group_norm": (norm.group_norm_forward, norm.group_norm_backward, group_norm_loops),
    "instance_norm": (
        norm.instance_norm_forward, norm.instance_norm_backward, instance_norm_loops,
    ),
}


def run_layer(case: NormCase, inputs: dict, forward=None, backward=None) -> tuple[tuple, tuple]:
    """Outputs as a tuple (out, [new_running_mean, new_running_var]) and the gradients."""
    forward = forward or LAYERS[case.layer][0]
    backward = backward or LAYERS[case.layer][1]
    outputs, cache = forward(*_tensor_args(inputs), **case.hyperparameters)
    if case.layer not in STATEFUL:
        outputs = (outputs,)
    return tuple(outputs), tuple(backward(inputs["dout"], cache))


def run_twin(case: NormCase, inputs: dict) -> tuple[tuple, tuple]:
    outputs, grads = LAYERS[case.layer][2](
        *_tensor_args(inputs), inputs["dout"], **case.hyperparameters
    )
    if case.layer not in STATEFUL:
        outputs = (outputs,)
    return tuple(outputs), tuple(grads)


def mismatches(actual: tuple[tuple, tuple], expected: tuple[tuple, tuple], *, rtol: float,
               case: NormCase) -> dict[str, str]:
    """Name -> message for every output or gradient that differs beyond ``rtol``.

    The tolerance is relative to the larger of 1 and the largest reference magnitude.
    """
    found = {}
    names = (*OUTPUT_NAMES[: len(expected[0])], *GRAD_NAMES)
    for name, got, want in zip(names, (*actual[0], *actual[1]), (*expected[0], *expected[1])):
        if want is None or got is None:
            if (want is None) != (got is None):
                found[name] = f"{name} is {got!r:.40}, should be {want!r:.40} [{case.id}]"
            continue
        if got.shape != want.shape:
            found[name] = f"{name} has shape {got.shape}, should be {want.shape} [{case.id}]"
            continue
        tolerance = rtol * max(1.0, float(np.abs(want).max(initial=0.0)))
        error = np.abs(got.astype(np.float64) - want)
        if not np.all(error <= tolerance):  # also catches NaN
            worst = np.unravel_index(np.nanargmax(error), error.shape)
            found[name] = (
                f"{name}: {int(np.sum(~(error <= tolerance)))} / {error.size} mismatched, "
                f"greatest absolute difference {np.nanmax(error):.3g} at index "
                f"{tuple(map(int, worst))} (up to {tolerance:.3g} allowed) [{case.id}]"
            )
    return found


def assert_all_close(actual, expected, *, rtol, case):
    found = mismatches(actual, expected, rtol=rtol, case=case)
    assert not found, "\n".join(found.values())


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float64_matches_torch(case: NormCase) -> None:
    inputs = make_inputs(case, np.float64)
    actual = run_layer(case, inputs)
    for array in (*actual[0], *actual[1]):
        assert array is None or array.dtype == np.float64
    assert_all_close(actual, torch_reference(case, inputs), rtol=1e-10, case=case)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float64_matches_loop_twin(case: NormCase) -> None:
    inputs = make_inputs(case, np.float64)
    assert_all_close(run_layer(case, inputs), run_twin(case, inputs), rtol=1e-10, case=case)


@pytest.mark.parametrize("case", CASES[::3], ids=CASE_IDS[::3])
def test_loop_twin_matches_torch(case: NormCase) -> None:
    inputs = make_inputs(case, np.float64)
    assert_all_close(run_twin(case, inputs), torch_reference(case, inputs), rtol=1e-10, case=case)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float32_dtype_and_close_to_torch_float64(case: NormCase) -> None:
    inputs = make_inputs(case, np.float32)
    actual = run_layer(case, inputs)
    for name, array in zip((*OUTPUT_NAMES, *GRAD_NAMES), (*actual[0], *actual[1])):
        assert array is None or array.dtype == np.float32, f"{name}: {array.dtype} [{case.id}]"
    # The reference sees the same float32 values, computed in float64. Near-constant slices
    # divide float32 rounding of the mean by sqrt(eps), hence the looser bound there.
    rtol = 1e-4 if case.special == "near_constant" else 1e-5
    assert_all_close(actual, torch_reference(case, inputs), rtol=rtol, case=case)


@pytest.mark.parametrize("case", CASES[::4], ids=CASE_IDS[::4])
def test_inputs_not_mutated_and_results_fresh(case: NormCase) -> None:
    inputs = make_inputs(case, np.float64)
    originals = {k: None if v is None else v.copy() for k, v in inputs.items()}
    for array in inputs.values():
        if array is not None:
            array.flags.writeable = False  # an in-place write raises instead of passing
    outputs, grads = run_layer(case, inputs)
    for name, array in inputs.items():
        if array is not None:
            np.testing.assert_array_equal(array, originals[name], err_msg=f"{name} [{case.id}]")
    for result in (*outputs, *grads):
        if result is not None:
            assert not any(
                np.shares_memory(result, a) for a in inputs.values() if a is not None
            ), case.id


# --- torch's edge cases ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 2, 1, 1)])
def test_batch_norm_training_with_one_value_per_channel_raises_like_torch(shape) -> None:
    x = np.random.default_rng(0).standard_normal(shape)
    channels = shape[1]
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(torch.tensor(x), torch.zeros(channels, dtype=torch.float64),
                     torch.ones(channels, dtype=torch.float64), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        norm.batch_norm_forward(x, np.zeros(channels), np.ones(channels), None, None,
                                training=True, momentum=0.1, eps=1e-5)


def test_batch_norm_eval_needs_running_statistics() -> None:
    with pytest.raises(RuntimeError, match="running_mean must be defined"):
        F.batch_norm(torch.zeros(2, 3), None, None, training=False)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        norm.batch_norm_forward(np.zeros((2, 3)), None, None, None, None,
                                training=False, momentum=0.1, eps=1e-5)


def test_batch_norm_running_update_by_hand() -> None:
    # Channel values 1, 2, 3, 6: mean 3, biased variance 3.5, unbiased 14 / 3.
    x = np.array([[1.0], [2.0], [3.0], [6.0]])
    (out, new_mean, new_var), _ = norm.batch_norm_forward(
        x, np.array([1.0]), np.array([2.0]), None, None, training=True, momentum=0.25, eps=0.0
    )
    np.testing.assert_allclose(new_mean, [0.75 * 1.0 + 0.25 * 3.0])
    np.testing.assert_allclose(new_var, [0.75 * 2.0 + 0.25 * 14.0 / 3.0])
    np.testing.assert_allclose(out[:, 0], (x[:, 0] - 3.0) / np.sqrt(3.5))


@pytest.mark.parametrize(
    "shape, num_groups, raises",
    [((1, 4, 1), 4, True), ((1, 2), 2, True), ((2, 4), 4, False), ((1, 4, 2), 4, False)],
)
def test_group_norm_size_check_follows_torch(shape, num_groups, raises) -> None:
    # torch checks N * (C // G) * prod(spatial) > 1, not the size of each group.
    x = np.random.default_rng(1).standard_normal(shape)
    if raises:
        with pytest.raises(ValueError, match="more than 1 value"):
            F.group_norm(torch.tensor(x), num_groups)
        with pytest.raises(ValueError, match="more than 1 value"):
            norm.group_norm_forward(x, None, None, num_groups=num_groups, eps=1e-5)
    else:
        out, _ = norm.group_norm_forward(x, None, None, num_groups=num_groups, eps=1e-5)
        np.testing.assert_allclose(out, F.group_norm(torch.tensor(x), num_groups).numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_group_norm_rejects_groups_not_dividing_channels() -> None:
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(torch.zeros(2, 6), 4)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        norm.group_norm_forward(np.zeros((2, 6)), None, None, num_groups=4, eps=1e-5)


def test_layer_norm_rejects_a_shape_that_is_not_trailing() -> None:
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(torch.zeros(2, 4), (2,))
    with pytest.raises(ValueError, match="normalized_shape"):
        norm.layer_norm_forward(np.zeros((2, 4)), None, None, normalized_shape=(2,), eps=1e-5)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 1), (1, 2, 1, 1)])
def test_instance_norm_with_one_spatial_element_raises_like_torch(shape) -> None:
    x = np.random.default_rng(2).standard_normal(shape)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(torch.tensor(x))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        norm.instance_norm_forward(x, None, None, None, None, use_input_stats=True,
                                   momentum=0.1, eps=1e-5)


def test_instance_norm_with_running_statistics_accepts_one_spatial_element() -> None:
    rng = np.random.default_rng(3)
    x, mean, var = rng.standard_normal((1, 3)), rng.standard_normal(3), rng.uniform(1, 2, 3)
    (out, _, _), _ = norm.instance_norm_forward(x, mean, var, None, None, use_input_stats=False,
                                                momentum=0.1, eps=1e-5)
    expected = F.instance_norm(torch.tensor(x), torch.tensor(mean), torch.tensor(var),
                               use_input_stats=False)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12)


# --- planted mistakes: each wrong variant must fail the torch comparison ---------------------
# A short textbook batch norm (and layer norm) with one classic mistake switched on at a time.
# ``wrong`` names the tensors the comparison must flag; the others must still pass, which is
# what a diagnosis can rely on. With no mistake the textbook version passes (the control).

def textbook_batch_norm(mistake: str | None) -> tuple[Callable, Callable]:
    def forward(x, running_mean, running_var, weight, bias, *, training, momentum, eps):
        axes = (0,) if mistake == "wrong_axes" else (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True, ddof=1 if mistake == "unbiased" else 0)
        if mistake == "eps_outside_sqrt":
            inv_std = 1 / (np.sqrt(var) + eps)
        else:
            inv_std = 1 / np.sqrt(var + eps)
        xhat = (x - mean) * inv_std
        out = xhat * weight.reshape(shape) + bias.reshape(shape)
        m = 1 - momentum if mistake == "momentum_on_old" else momentum
        channels = x.shape[1]
        # Per-channel batch statistics (averaged over positions when the axes are wrong).
        batch_mean = np.moveaxis(mean, 1, 0).reshape(channels, -1).mean(axis=1)
        unbiased = x.var(axis=axes, keepdims=True, ddof=1)
        batch_var = np.moveaxis(unbiased, 1, 0).reshape(channels, -1).mean(axis=1)
        new_mean = (1 - m) * running_mean + m * batch_mean
        new_var = (1 - m) * running_var + m * batch_var
        return (out, new_mean, new_var), (xhat, inv_std, weight.reshape(shape), axes)

    def backward(dout, cache):
        xhat, inv_std, weight, axes = cache
        g = dout * weight
        mean_term = 0 if mistake == "no_mean_term" else g.mean(axis=axes, keepdims=True)
        grad_input = inv_std * (g - mean_term - xhat * (g * xhat).mean(axis=axes, keepdims=True))
        param_axes = (0, *range(2, dout.ndim))
        return grad_input, (dout * xhat).sum(axis=param_axes), dout.sum(axis=param_axes)

    return forward, backward


def textbook_layer_norm(mistake: str | None) -> tuple[Callable, Callable]:
    def forward(x, weight, bias, *, normalized_shape, eps):
        count = 1 if mistake == "wrong_axes" else len(normalized_shape)
        axes = tuple(range(x.ndim - count, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        inv_std = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
        xhat = (x - mean) * inv_std
        return xhat * weight + bias, (xhat, inv_std, weight, axes)

    def backward(dout, cache):
        xhat, inv_std, weight, axes = cache
        g = dout * weight
        grad_input = inv_std * (g - g.mean(axis=axes, keepdims=True)
                                - xhat * (g * xhat).mean(axis=axes, keepdims=True))
        leading = tuple(range(dout.ndim - weight.ndim))
        return grad_input, (dout * xhat).sum(axis=leading), dout.sum(axis=leading)

    return forward, backward


AFFINE_WRONG = frozenset({"output", "grad_input", "grad_weight"})
PLANTED = [
    # (name, mistake, case, tensors that must be flagged, dtype, rtol)
    ("bn-control", None, _bn((3, 2, 2, 2), seed=51), frozenset(), np.float64, 1e-10),
    ("bn-unbiased-variance-normalises", "unbiased", _bn((3, 2, 2, 2), seed=51), AFFINE_WRONG,
     np.float64, 1e-10),
    ("bn-momentum-weights-old-value", "momentum_on_old", _bn((4, 3, 2), seed=52),
     frozenset({"new_running_mean", "new_running_var"}), np.float64, 1e-10),
    ("bn-eps-outside-sqrt", "eps_outside_sqrt", _bn((4, 3, 2), seed=53), AFFINE_WRONG,
     np.float64, 1e-10),
    # With a near-constant channel the same mistake shows even at float32's tolerance.
    ("bn-eps-outside-sqrt-near-constant-f32", "eps_outside_sqrt",
     _bn((4, 3, 2), special="near_constant", seed=53), AFFINE_WRONG, np.float32, 1e-4),
    ("bn-backward-drops-mean-term", "no_mean_term", _bn((3, 2, 2, 2), seed=54),
     frozenset({"grad_input"}), np.float64, 1e-10),
    # The per-position means still average to the channel mean, so new_running_mean stays
    # right; the average of per-position variances is not the channel variance.
    ("bn-statistics-over-wrong-axes", "wrong_axes", _bn((3, 2, 2, 2), seed=55),
     AFFINE_WRONG | {"new_running_var"}, np.float64, 1e-10),
    ("ln-control", None, _ln((2, 3, 4), (3, 4), seed=56), frozenset(), np.float64, 1e-10),
    ("ln-statistics-over-wrong-axes", "wrong_axes", _ln((2, 3, 4), (3, 4), seed=56),
     AFFINE_WRONG, np.float64, 1e-10),
]
TEXTBOOK = {"batch_norm": textbook_batch_norm, "layer_norm": textbook_layer_norm}


@pytest.mark.parametrize(
    "name, mistake, case, wrong, dtype, rtol", PLANTED, ids=[row[0] for row in PLANTED]
)
def test_planted_mistake_is_caught(name, mistake, case, wrong, dtype, rtol) -> None:
    inputs = make_inputs(case, dtype)
    expected = torch_reference(case, inputs)
    # The built-in layer passes on the same case and tolerance...
    assert not mismatches(run_layer(case, inputs), expected, rtol=rtol, case=case)
    # ...and the variant fails exactly on the tensors the mistake corrupts.
    forward, backward = TEXTBOOK[case.layer](mistake)
    found = mismatches(run_layer(case, inputs, forward, backward), expected, rtol=rtol, case=case)
    assert set(found) == wrong, found
