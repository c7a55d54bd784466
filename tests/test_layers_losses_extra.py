"""Tests of refcheck.layers.losses_extra against torch autograd in float64."""
from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import helpers
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import numeric_gradient

from refcheck.layers import losses_extra
from refcheck.layers.activations import log_softmax_forward

DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]
# (rtol, atol) per dtype against a float64 reference; float64 is tight enough that a float64
# layer computing internally in float32 fails.
TOLERANCES = {np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-13)}
DTYPE_IDS = {"ids": lambda d: np.dtype(d).name}
SHAPE_IDS = {"ids": lambda s: "x".join(map(str, s)) or "unbatched"}
TORCH_LOSSES = {
    "nll_loss": F.nll_loss,
    "cross_entropy": F.cross_entropy,
    "l1_loss": F.l1_loss,
    "smooth_l1_loss": F.smooth_l1_loss,
    "huber_loss": F.huber_loss,
    "kl_div": F.kl_div,
    "multi_margin_loss": F.multi_margin_loss,
    "binary_cross_entropy": F.binary_cross_entropy,
}
INDEX_TARGETS = {"nll_loss", "cross_entropy", "multi_margin_loss"}
assert_matches = partial(helpers.assert_matches, tolerances=TOLERANCES)


def _arguments(input, target, weight):
    return (input, target) if weight is None else (input, target, weight)


def run_loss(name: str, input, target, weight, dout, kwargs: dict[str, Any]):
    """Forward and backward of one loss; checks the (grad_input,) tuple and no mutation."""
    tensors = _arguments(input, target, weight) + (dout,)
    before = [t.copy() for t in tensors]
    loss, cache = getattr(losses_extra, f"{name}_forward")(
        *_arguments(input, target, weight), **kwargs
    )
    grads = getattr(losses_extra, f"{name}_backward")(dout, cache)
    assert isinstance(grads, tuple) and len(grads) == 1, f"{name}: backward must return (dx,)"
    for original, now in zip(before, tensors):
        np.testing.assert_array_equal(now, original, err_msg=f"{name} mutated an argument")
    return loss, grads[0]


def torch_reference(name: str, input, target, weight, dout, kwargs: dict[str, Any]):
    """Loss and input gradient from torch autograd in float64."""
    tinput = torch.tensor(input, dtype=torch.float64, requires_grad=True)
    target_dtype = torch.int64 if name in INDEX_TARGETS else torch.float64
    ttarget = torch.tensor(target, dtype=target_dtype)
    extra = {} if weight is None else {"weight": torch.tensor(weight, dtype=torch.float64)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div warns about reduction='mean'
        loss = TORCH_LOSSES[name](tinput, ttarget, **extra, **kwargs)
    loss.backward(torch.tensor(dout, dtype=torch.float64))
    return loss.detach().numpy(), tinput.grad.numpy()


def random_upstream(rng: np.random.Generator, shape: tuple, dtype) -> np.ndarray:
    """A signed random upstream gradient, never all ones: a wrong scale or sign cannot hide."""
    if shape == ():
        return np.asarray(rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0]), dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def check_against_torch(name, input, target, weight, kwargs, dtype, seed):
    rng = np.random.default_rng(seed)
    forward = getattr(losses_extra, f"{name}_forward")
    shape = forward(*_arguments(input, target, weight), **kwargs)[0].shape
    dout = random_upstream(rng, shape, dtype)
    loss, grad_input = run_loss(name, input, target, weight, dout, kwargs)
    expected_loss, expected_grad = torch_reference(name, input, target, weight, dout, kwargs)
    assert_matches(loss, expected_loss, dtype, f"{name}({kwargs}) loss")
    assert_matches(grad_input, expected_grad, dtype, f"{name}({kwargs}) grad_input")
    return loss, grad_input


def class_targets(rng, input_shape, ignore_index, ignored=(1, 4)):
    """Integer targets for an (N, C, *) or (C,) input, some set to ``ignore_index``."""
    if len(input_shape) == 1:
        return np.array(rng.integers(0, input_shape[0]), dtype=np.int64)
    shape = (input_shape[0],) + input_shape[2:]
    target = rng.integers(0, input_shape[1], shape).astype(np.int64)
    flat = target.reshape(-1)
    for index in ignored:
        if index < flat.size:
            flat[index] = ignore_index
    return target


CLASS_SHAPES = [(6, 5), (3, 4, 2, 3), (5,)]


# ------------------------------------------------------------------------------- nll_loss


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 2])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", CLASS_SHAPES, **SHAPE_IDS)
def test_nll_loss_matches_torch(shape, weighted, ignore_index, reduction, dtype):
    rng = np.random.default_rng(50)
    input = rng.standard_normal(shape).astype(dtype)
    target = class_targets(rng, shape, ignore_index)
    weight = rng.uniform(0.1, 3.0, shape[1] if len(shape) > 1 else shape[0]).astype(dtype)
    kwargs = {"ignore_index": ignore_index, "reduction": reduction}
    check_against_torch("nll_loss", input, target, weight if weighted else None, kwargs, dtype,
                        seed=51)


# -------------------------------------------------------------------------- cross_entropy


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15, 1.0])
@pytest.mark.parametrize("ignore_index", [-100, 2])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", CLASS_SHAPES, **SHAPE_IDS)
def test_cross_entropy_matches_torch(shape, weighted, ignore_index, label_smoothing, reduction,
                                     dtype):
    rng = np.random.default_rng(52)
    input = (rng.standard_normal(shape) * 3).astype(dtype)
    target = class_targets(rng, shape, ignore_index)
    weight = rng.uniform(0.1, 3.0, shape[1] if len(shape) > 1 else shape[0]).astype(dtype)
    kwargs = {"ignore_index": ignore_index, "reduction": reduction,
              "label_smoothing": label_smoothing}
    check_against_torch("cross_entropy", input, target, weight if weighted else None, kwargs,
                        dtype, seed=53)


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
def test_cross_entropy_with_large_logits(dtype):
    rng = np.random.default_rng(54)
    input = (rng.standard_normal((4, 5)) * 300).astype(dtype)
    input[0] = [500.0, -500.0, 450.0, -50.0, 0.0]
    target = np.array([1, 0, 3, 2])  # row 0 targets the -500 logit: a loss near 1000
    weight = np.array([0.5, 2.0, 1.0, 0.25, 3.0], dtype=dtype)
    for reduction in REDUCTIONS:
        kwargs = {"reduction": reduction, "label_smoothing": 0.2}
        loss, grad_input = check_against_torch("cross_entropy", input, target, weight, kwargs,
                                               dtype, seed=55)
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad_input))


CLASS_LOSSES = [("nll_loss", 0.0), ("cross_entropy", 0.0), ("cross_entropy", 0.3)]
CLASS_LOSS_IDS = ["nll_loss", "cross_entropy", "cross_entropy-smoothed"]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name,label_smoothing", CLASS_LOSSES, ids=CLASS_LOSS_IDS)
def test_every_target_ignored_gives_nan_mean_and_zero_gradient(name, label_smoothing, weighted):
    rng = np.random.default_rng(57)
    input = rng.standard_normal((3, 4))
    target = np.full(3, -100)
    weight = rng.uniform(0.5, 2.0, 4) if weighted else None
    kwargs = {"reduction": "mean"}
    if name == "cross_entropy":
        kwargs["label_smoothing"] = label_smoothing
    dout = np.array(0.75)
    loss, grad_input = run_loss(name, input, target, weight, dout, kwargs)
    expected_loss, expected_grad = torch_reference(name, input, target, weight, dout, kwargs)
    assert np.isnan(loss) and np.isnan(expected_loss)
    np.testing.assert_array_equal(grad_input, expected_grad)
    np.testing.assert_array_equal(grad_input, np.zeros((3, 4)))
    for reduction in ("sum", "none"):
        kwargs["reduction"] = reduction
        loss, _ = run_loss(name, input, target, weight, np.zeros(() if reduction == "sum" else 3),
                           kwargs)
        np.testing.assert_array_equal(loss, np.zeros(np.shape(loss)))


@pytest.mark.parametrize("name,label_smoothing", CLASS_LOSSES, ids=CLASS_LOSS_IDS)
def test_kept_targets_with_zero_weights_give_nan_like_torch(name, label_smoothing):
    rng = np.random.default_rng(58)
    input = rng.standard_normal((4, 3))
    target = np.array([1, 1, -100, 2])
    weight = np.array([1.0, 0.0, 0.0])
    kwargs = {"reduction": "mean"}
    if name == "cross_entropy":
        kwargs["label_smoothing"] = label_smoothing
    dout = np.array(-0.6)
    loss, grad_input = run_loss(name, input, target, weight, dout, kwargs)
    expected_loss, expected_grad = torch_reference(name, input, target, weight, dout, kwargs)
    assert np.isnan(loss) and np.isnan(expected_loss)
    np.testing.assert_array_equal(grad_input, expected_grad)  # NaN where torch has NaN


def test_class_losses_reject_bad_arguments():
    input = np.zeros((3, 4))
    for name in ("nll_loss", "cross_entropy"):
        forward = getattr(losses_extra, f"{name}_forward")
        with pytest.raises(IndexError, match="out of bounds"):
            forward(input, np.array([0, 4, 1]))
        with pytest.raises(IndexError, match="out of bounds"):
            forward(input, np.array([0, -100, 1]), ignore_index=1)  # -100 is then a class
        with pytest.raises(ValueError, match="integer"):
            forward(input, np.array([0.0, 1.0, 2.0]))
        with pytest.raises(ValueError, match=r"\(N, C\)"):
            forward(input, np.array([0, 1]))
        with pytest.raises(ValueError, match="weight"):
            forward(input, np.array([0, 1, 2]), np.ones(3))
        with pytest.raises(ValueError, match="reduction"):
            forward(input, np.array([0, 1, 2]), reduction="batchmean")
    # An ignore_index outside [0, C) is fine when it is the one used.
    losses_extra.nll_loss_forward(input, np.array([0, 7, 1]), ignore_index=7)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses_extra.cross_entropy_forward(input, np.array([0, 1, 2]), label_smoothing=1.5)


# ------------------------------------------------------------------ l1, smooth_l1, huber


def regression_pair(rng, dtype, boundary: float):
    """Input and target on a 1/8 grid, with differences of exactly 0 and +-boundary planted."""
    target = np.round(rng.standard_normal((4, 5)) * 8) / 8
    input = np.round(rng.standard_normal((4, 5)) * 16) / 8
    input[0, :5] = target[0, :5] + [0.0, boundary, -boundary, boundary / 2, -3 * boundary]
    return input.astype(dtype), target.astype(dtype)


REGRESSION = [
    ("l1_loss", {}, 1.0),
    ("smooth_l1_loss", {"beta": 1.0}, 1.0),
    ("smooth_l1_loss", {"beta": 0.5}, 0.5),
    ("smooth_l1_loss", {"beta": 0.0}, 0.5),
    ("smooth_l1_loss", {"beta": 3.0}, 3.0),
    ("huber_loss", {"delta": 1.0}, 1.0),
    ("huber_loss", {"delta": 0.25}, 0.25),
    ("huber_loss", {"delta": 2.5}, 2.5),
]


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kwargs,boundary", REGRESSION,
                         ids=[f"{n}-{list(k.values())}" for n, k, _ in REGRESSION])
def test_regression_losses_match_torch_at_the_boundaries(name, kwargs, boundary, reduction,
                                                         dtype):
    rng = np.random.default_rng(60)
    input, target = regression_pair(rng, dtype, boundary)
    check_against_torch(name, input, target, None, {"reduction": reduction, **kwargs}, dtype,
                        seed=61)


def test_regression_losses_reject_invalid_parameters():
    x = np.zeros(3)
    with pytest.raises(ValueError, match="beta"):
        losses_extra.smooth_l1_loss_forward(x, x, beta=-1.0)
    for delta in (0.0, -1.0):
        with pytest.raises(ValueError, match="delta"):
            losses_extra.huber_loss_forward(x, x, delta=delta)
    with pytest.raises(ValueError, match="shape"):
        losses_extra.l1_loss_forward(x, np.zeros(4))


# ----------------------------------------------------------------------------------- kl_div


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(4, 5), (3, 2, 4), ()], **SHAPE_IDS)
def test_kl_div_matches_torch(shape, log_target, reduction, dtype):
    rng = np.random.default_rng(62)
    input = rng.standard_normal(shape) - 1.0
    target = rng.uniform(0.0, 1.0, shape)
    if shape:
        target.reshape(-1)[::3] = 0.0  # 0 * log 0 = 0
    if log_target:
        target = np.log(target + 0.05)
    kwargs = {"reduction": reduction, "log_target": log_target}
    check_against_torch("kl_div", input.astype(dtype), target.astype(dtype), None, kwargs, dtype,
                        seed=63)


def test_kl_div_negative_target_is_nan_like_torch():
    input = np.array([-1.0, -2.0, -0.5])
    target = np.array([0.0, -0.5, 0.3])
    dout = np.array([0.3, -1.1, 0.8])
    loss, grad_input = run_loss("kl_div", input, target, None, dout, {"reduction": "none"})
    expected_loss, expected_grad = torch_reference("kl_div", input, target, None, dout,
                                                   {"reduction": "none"})
    np.testing.assert_array_equal(loss, expected_loss)
    assert np.isnan(loss[1]) and loss[0] == 0.0
    np.testing.assert_allclose(grad_input, expected_grad, rtol=1e-15)


# ------------------------------------------------------------------------ multi_margin_loss


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("margin", [1.0, 0.5, -0.25])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("shape", [(6, 4), (5,)], **SHAPE_IDS)
def test_multi_margin_loss_matches_torch(shape, p, margin, weighted, reduction, dtype):
    rng = np.random.default_rng(64)
    # Scores on a 1/4 grid, with margin terms of exactly 0 (ties) planted in row 0.
    input = np.round(rng.standard_normal(shape) * 4) / 4
    target = class_targets(rng, shape, ignore_index=0, ignored=())
    if len(shape) == 2:
        input[0, :] = input[0, target[0]] - margin
        input[0, target[0]] = 0.75
    weight = rng.uniform(0.1, 3.0, shape[-1]).astype(dtype) if weighted else None
    kwargs = {"p": p, "margin": margin, "reduction": reduction}
    check_against_torch("multi_margin_loss", input.astype(dtype), target, weight, kwargs, dtype,
                        seed=65)


def test_multi_margin_loss_tie_adds_no_gradient():
    input = np.array([[0.0, 1.0, 0.0]])
    dout = np.array(1.3)
    loss, grad_input = run_loss("multi_margin_loss", input, np.array([1]), None, dout,
                                {"reduction": "sum"})
    assert loss == 0.0
    np.testing.assert_array_equal(grad_input, np.zeros((1, 3)))


def test_multi_margin_loss_rejects_bad_arguments():
    input = np.zeros((2, 3))
    with pytest.raises(ValueError, match="p == 1"):
        losses_extra.multi_margin_loss_forward(input, np.array([0, 1]), p=3)
    with pytest.raises(IndexError, match="out of bounds"):
        losses_extra.multi_margin_loss_forward(input, np.array([0, 3]))
    with pytest.raises(ValueError, match="weight"):
        losses_extra.multi_margin_loss_forward(input, np.array([0, 1]), np.ones(2))


# --------------------------------------------------------------------- binary_cross_entropy

BCE_WEIGHTS = {"none": None, "full": (4, 6), "row": (6,), "column": (4, 1)}


@pytest.mark.parametrize("dtype", DTYPES, **DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", list(BCE_WEIGHTS))
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_binary_cross_entropy_matches_torch_at_zero_and_one(soft, weight_shape, reduction,
                                                            dtype):
    rng = np.random.default_rng(66)
    input = rng.uniform(0.02, 0.98, (4, 6))
    target = rng.uniform(0.0, 1.0, (4, 6)) if soft else rng.integers(0, 2, (4, 6)).astype(float)
    input[0, :3], target[0, :3] = 0.0, [0.0, 1.0, 0.3]
    input[1, :3], target[1, :3] = 1.0, [0.0, 1.0, 0.7]
    input[2, :2] = [1e-13, 1e-30]
    shape = BCE_WEIGHTS[weight_shape]
    weight = None if shape is None else rng.uniform(0.0, 2.0, shape).astype(dtype)
    loss, grad_input = check_against_torch(
        "binary_cross_entropy", input.astype(dtype), target.astype(dtype), weight,
        {"reduction": reduction}, dtype, seed=67,
    )
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad_input))


def test_binary_cross_entropy_rejects_bad_arguments():
    forward = losses_extra.binary_cross_entropy_forward
    with pytest.raises(ValueError, match="input"):
        forward(np.array([1.5]), np.array([1.0]))
    with pytest.raises(ValueError, match="target"):
        forward(np.array([0.5]), np.array([-0.5]))
    with pytest.raises(ValueError, match="broadcast"):
        forward(np.full(3, 0.5), np.full(3, 0.5), np.ones((2, 3)))  # torch rejects it too
    with pytest.raises(ValueError, match="broadcast"):
        forward(np.full(3, 0.5), np.full(3, 0.5), np.ones(2))


# --------------------------------------------------------------------------- shared checks


def test_none_reduction_needs_an_upstream_gradient_of_the_loss_shape():
    _, cache = losses_extra.l1_loss_forward(np.zeros((2, 3)), np.ones((2, 3)), reduction="none")
    with pytest.raises(ValueError, match="shape"):
        losses_extra.l1_loss_backward(np.array(1.0), cache)
    _, cache = losses_extra.nll_loss_forward(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        losses_extra.nll_loss_backward(np.ones(2), cache)


FD_CASES = [
    ("nll_loss", {"reduction": "mean", "ignore_index": 1}, True),
    ("cross_entropy", {"reduction": "mean", "label_smoothing": 0.2, "ignore_index": 1}, True),
    ("cross_entropy", {"reduction": "sum", "label_smoothing": 0.7}, False),
    ("smooth_l1_loss", {"reduction": "mean", "beta": 0.7}, False),
    ("huber_loss", {"reduction": "sum", "delta": 0.7}, False),
    ("kl_div", {"reduction": "batchmean"}, False),
    ("kl_div", {"reduction": "mean", "log_target": True}, False),
    ("multi_margin_loss", {"reduction": "mean", "p": 2, "margin": 0.8}, True),
    ("multi_margin_loss", {"reduction": "sum", "p": 1}, False),
    ("binary_cross_entropy", {"reduction": "mean"}, True),
]


@pytest.mark.parametrize("name,kwargs,weighted", FD_CASES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FD_CASES)])
def test_backward_matches_finite_differences(name, kwargs, weighted):
    rng = np.random.default_rng(68)
    if name in INDEX_TARGETS:
        input = rng.standard_normal((4, 3, 2)) if name != "multi_margin_loss" else \
            rng.standard_normal((4, 3))
        target = rng.integers(0, 3, (input.shape[0],) + input.shape[2:])
    elif name == "binary_cross_entropy":
        input, target = rng.uniform(0.1, 0.9, (3, 4)), rng.uniform(0.0, 1.0, (3, 4))
    else:
        input, target = rng.standard_normal((3, 4)), rng.uniform(0.0, 1.0, (3, 4))
    weight = rng.uniform(0.2, 2.0, 4 if name == "binary_cross_entropy" else 3) if weighted \
        else None
    dout = np.array(-1.7)
    forward = getattr(losses_extra, f"{name}_forward")
    _, grad_input = run_loss(name, input, target, weight, dout, kwargs)

    def loss_of_input(value):
        return float(forward(*_arguments(value, target, weight), **kwargs)[0]) * float(dout)

    np.testing.assert_allclose(grad_input, numeric_gradient(loss_of_input, input), rtol=1e-6,
                               atol=1e-8)


# ------------------------------------------------------------------------- planted mistakes


def _nll_weighted_mean_over_n(input, target, weight=None, *, ignore_index=-100,
                              reduction="mean"):
    """Weighted mean divided by the number of samples instead of the summed target weights."""
    total, cache = losses_extra.nll_loss_forward(input, target, weight,
                                                 ignore_index=ignore_index, reduction="sum")
    return total / target.size, cache


def _label_smoothing_without_weights(input, target, weight=None, *, ignore_index=-100,
                                     reduction="mean", label_smoothing=0.0):
    """The uniform term as ``-sum_c logp[n, c]``, forgetting the class weights."""
    log_probs, _ = log_softmax_forward(input, dim=1)
    kept = target != ignore_index
    nll, cache = losses_extra.nll_loss_forward(log_probs, target, weight,
                                               ignore_index=ignore_index, reduction="sum")
    smooth = -np.sum(np.sum(log_probs, axis=1)[kept])
    total = (1 - label_smoothing) * nll + label_smoothing / input.shape[1] * smooth
    return total / np.sum(weight[target[kept]]), cache


def _smooth_l1_wrong_side(input, target, *, reduction="mean", beta=1.0):
    """Quadratic above beta and linear below (the comparison turned around)."""
    diff = input - target
    size = np.abs(diff)
    elementwise = np.where(size > beta, 0.5 * diff * diff / beta, size - 0.5 * beta)
    return np.mean(elementwise), (diff, reduction, beta)


def _multi_margin_with_target_class(input, target, weight=None, *, p=1, margin=1.0,
                                    reduction="mean"):
    """Sums the hinge over every class, the target's own included (adds margin**p each)."""
    rows = np.arange(input.shape[0])
    margins = np.maximum(margin - input[rows, target][:, None] + input, 0.0) ** p
    return np.mean(np.sum(margins, axis=1) / input.shape[1]), None


def _kl_div_batchmean_as_mean(input, target, *, reduction="mean", log_target=False):
    """'batchmean' computed as 'mean': divides by every element, not the batch size."""
    if reduction == "batchmean":
        reduction = "mean"
    return losses_extra.kl_div_forward(input, target, reduction=reduction, log_target=log_target)


def _planted_inputs(name, rng):
    if name in ("nll_loss", "cross_entropy"):
        return rng.standard_normal((5, 4)), np.array([0, 3, -100, 1, 3]), \
            np.array([0.5, 2.0, 1.0, 3.0])
    if name == "multi_margin_loss":
        return rng.standard_normal((5, 4)), np.array([0, 3, 2, 1, 3]), None
    if name == "kl_div":
        return rng.standard_normal((3, 4)) - 1.0, rng.uniform(0.0, 1.0, (3, 4)), None
    return rng.standard_normal((4, 5)) * 2, rng.standard_normal((4, 5)), None


PLANTED = [
    ("nll_loss", {"reduction": "mean"}, _nll_weighted_mean_over_n),
    ("cross_entropy", {"reduction": "mean", "label_smoothing": 0.3},
     _label_smoothing_without_weights),
    ("smooth_l1_loss", {"reduction": "mean", "beta": 1.0}, _smooth_l1_wrong_side),
    ("multi_margin_loss", {"reduction": "mean"}, _multi_margin_with_target_class),
    ("kl_div", {"reduction": "batchmean"}, _kl_div_batchmean_as_mean),
]


@pytest.mark.parametrize("name,kwargs,wrong", PLANTED, ids=[p[0] for p in PLANTED])
def test_planted_mistake_is_caught(name, kwargs, wrong):
    input, target, weight = _planted_inputs(name, np.random.default_rng(69))
    check_against_torch(name, input, target, weight, kwargs, np.float64, seed=70)
    # The wrong forward changes the loss; the comparison with torch must fail on it.
    expected_loss, _ = torch_reference(name, input, target, weight, np.array(1.0), kwargs)
    wrong_loss, _ = wrong(*_arguments(input, target, weight), **kwargs)
    with pytest.raises(AssertionError):
        assert_matches(np.asarray(wrong_loss), expected_loss, np.float64, f"planted {name}")


def test_the_self_check_keeps_a_target_without_negative_values_so():
    """kl_div's target of zeros was nudged to negative values, where its forward is NaN: the correct
    built-in loss was flagged 'backward disagrees with own forward'."""
    from refcheck.execution.sweep import check

    frame = check(None, ["kl_div"], workers=0)
    checked = frame[frame["selfcheck"].notna() & (frame["tensor"] == "grad_input")]
    assert len(checked) and not checked["selfcheck"].astype(str).str.startswith("backward disagrees").any()
