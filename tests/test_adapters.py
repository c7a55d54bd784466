"""Tests of refcheck.adapters and the example modules, against torch.autograd in float64."""
from __future__ import annotations

import importlib.util
import inspect
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from refcheck.adapters import adapt, adapt_cs231n, adapt_objects
from refcheck.adapters.cs231n import conv_param_for, pool_param_for
from refcheck.adapters import LayerFunctions
from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import check

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"refcheck_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


functional = load_example("functional_layers")
cs231n = load_example("cs231n_layers")
objects = load_example("object_layers")


def module_with(name: str, **attributes) -> ModuleType:
    module = ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


def torch_reference(torch_fn, arrays, n_grads, seed, **torch_kwargs):
    """torch output, a random upstream gradient, and torch's gradients of the first n_grads arrays."""
    tensors = [None if a is None else torch.tensor(a, requires_grad=i < n_grads)
               for i, a in enumerate(arrays)]
    with warnings.catch_warnings():
        # torch warns that padding='same' with an even kernel copies the input; the result is exact.
        warnings.filterwarnings("ignore", message="Using padding='same'", category=UserWarning)
        out = torch_fn(*tensors, **torch_kwargs)
    rng = np.random.default_rng(seed + 1)
    dout = np.asarray(rng.standard_normal(tuple(out.shape)))
    out.backward(torch.from_numpy(dout.copy()))
    grads = [None if t is None else t.grad.numpy() for t in tensors[:n_grads]]
    return out.detach().numpy(), dout, grads


def assert_same(actual, expected, what):
    if expected is None:
        assert actual is None, f"{what}: expected None, got {type(actual)}"
        return
    assert np.shape(actual) == expected.shape, f"{what}: shape {np.shape(actual)} != {expected.shape}"
    assert np.asarray(actual).dtype == expected.dtype, f"{what}: dtype {np.asarray(actual).dtype}"
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12, err_msg=what)


def check_against_torch(forward, backward, torch_fn, arrays, *, n_grads, seed, hparams,
                        torch_kwargs=None):
    """Run forward/backward on copies of arrays and compare output and gradients with torch."""
    expected_out, dout, expected_grads = torch_reference(
        torch_fn, arrays, n_grads, seed, **(hparams if torch_kwargs is None else torch_kwargs))
    copies = [None if a is None else a.copy() for a in arrays]
    out, cache = forward(*copies, **hparams)
    grads = backward(dout.copy(), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert_same(out, expected_out, "output")
    assert len(grads) == n_grads
    for index, (grad, expected) in enumerate(zip(grads, expected_grads)):
        assert_same(grad, expected, f"gradient {index}")
    for copy, original in zip(copies, arrays):  # inputs left untouched
        if original is not None:
            np.testing.assert_array_equal(copy, original)


def conv_inputs(seed, x_shape, weight_shape, with_bias, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal(weight_shape).astype(dtype)
    bias = rng.standard_normal(weight_shape[0]).astype(dtype) if with_bias else None
    return [x, weight, bias]


def linear_inputs(rng, batch, in_features, out_features, with_bias):
    """x (batch, in_features), weight (out_features, in_features) and bias or None, drawn in order."""
    return [rng.standard_normal((batch, in_features)), rng.standard_normal((out_features, in_features)),
            rng.standard_normal(out_features) if with_bias else None]


def tied_images(seed, shape):
    """Images with many equal values, so max pooling windows contain ties."""
    return np.random.default_rng(seed).integers(-2, 3, shape).astype(np.float64)


CONV_CASES = [  # (x shape, weight shape, bias, hyperparameters)
    ((2, 3, 7, 6), (4, 3, 3, 3), True, {"stride": (1, 1), "padding": (0, 0)}),
    ((2, 3, 8, 7), (5, 3, 3, 2), False, {"stride": (2, 2), "padding": (1, 1)}),
    ((1, 2, 9, 9), (3, 2, 4, 4), True, {"stride": (3, 3), "padding": (2, 2)}),
    ((2, 2, 6, 5), (3, 2, 3, 3), True, {"stride": (1, 1), "padding": "same"}),
    ((2, 2, 6, 5), (3, 2, 2, 3), True, {"stride": (1, 1), "padding": "valid"}),
]
CONV_CASES_EVEN_SAME = [((2, 2, 6, 5), (3, 2, 4, 2), False, {"stride": (1, 1), "padding": "same"})]
POOL_CASES = [  # (x shape, hyperparameters); tied inputs
    ((2, 3, 6, 6), {"kernel_size": (2, 2), "stride": (2, 2)}),
    ((2, 2, 7, 6), {"kernel_size": (3, 2), "stride": (1, 1)}),
    ((1, 2, 9, 8), {"kernel_size": (3, 3), "stride": (2, 2)}),
]
POOL_CASES_PADDED = [((2, 2, 7, 6), {"kernel_size": (3, 3), "stride": (2, 1), "padding": (1, 1)})]


# --- CS231n adapter ----------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, weight_shape, with_bias, hparams", CONV_CASES)
def test_cs231n_conv_matches_torch(x_shape, weight_shape, with_bias, hparams):
    conv = adapt(cs231n)["conv2d"]
    hparams = {**hparams, "dilation": (1, 1), "groups": 1}
    check_against_torch(conv.forward, conv.backward, F.conv2d,
                        conv_inputs(3, x_shape, weight_shape, with_bias),
                        n_grads=3, seed=3, hparams=hparams)


@pytest.mark.parametrize("x_shape, hparams", POOL_CASES)
def test_cs231n_max_pool_matches_torch_with_ties(x_shape, hparams):
    pool = adapt(cs231n)["max_pool2d"]
    hparams = {**hparams, "padding": (0, 0), "dilation": (1, 1), "ceil_mode": False}
    check_against_torch(pool.forward, pool.backward, F.max_pool2d, [tied_images(5, x_shape)],
                        n_grads=1, seed=5, hparams=hparams)


@pytest.mark.parametrize("with_bias", [True, False])
def test_cs231n_affine_matches_torch_linear(with_bias):
    linear = adapt(cs231n)["linear"]
    arrays = linear_inputs(np.random.default_rng(7), 4, 5, 3, with_bias)
    check_against_torch(linear.forward, linear.backward, F.linear, arrays,
                        n_grads=3, seed=7, hparams={})


def test_cs231n_softmax_loss_matches_torch_cross_entropy():
    loss = adapt(cs231n)["cross_entropy"]
    rng = np.random.default_rng(11)
    arrays = [rng.standard_normal((6, 4)), rng.integers(0, 4, 6)]
    check_against_torch(loss.forward, loss.backward, F.cross_entropy, arrays,
                        n_grads=1, seed=11, hparams={"reduction": "mean"})
    assert loss.constraint({"reduction": "sum"}) is not None


def test_cs231n_example_relu_is_contract_style_and_matches_torch():
    assert "relu" not in adapt(cs231n)  # relu_forward/relu_backward already follow the contract
    x = np.random.default_rng(13).standard_normal((3, 4, 5))
    x[0, 0, :3] = 0.0  # relu'(0) = 0 in torch
    check_against_torch(cs231n.relu_forward, cs231n.relu_backward, F.relu, [x],
                        n_grads=1, seed=13, hparams={})


def test_cs231n_accepted_and_origin():
    adapted = adapt(cs231n)
    assert sorted(adapted) == ["conv2d", "cross_entropy", "linear", "max_pool2d"]
    assert adapted["conv2d"].accepted == {"stride", "padding"}
    assert adapted["max_pool2d"].accepted == {"kernel_size", "stride"}
    assert adapted["linear"].accepted == frozenset()
    assert adapted["conv2d"].origin == "cs231n: conv_forward_naive"
    assert adapted["linear"].origin == "cs231n: affine_forward"
    assert all(isinstance(functions, LayerFunctions) for functions in adapted.values())


@pytest.mark.parametrize("hparams, reason_word", [
    ({"stride": (2, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}, "stride"),
    ({"stride": (1, 1), "padding": (1, 0), "dilation": (1, 1), "groups": 1}, "pad"),
    ({"stride": (1, 1), "padding": (0, 0), "dilation": (2, 2), "groups": 1}, "dilation"),
    ({"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 2}, "groups"),
    ({"stride": (1, 1), "padding": "same", "dilation": (1, 1), "groups": 1}, "kernel size"),
    ({"stride": (1, 1), "padding": "same", "weight_shape": (4, 3, 4, 4)}, "even"),
])
def test_cs231n_conv_constraint_gives_a_reason(hparams, reason_word):
    reason = adapt(cs231n)["conv2d"].constraint(hparams)
    assert reason is not None and reason_word in reason


@pytest.mark.parametrize("hparams, expected", [
    ({"stride": (2, 2), "padding": (1, 1), "dilation": (1, 1), "groups": 1}, {"stride": 2, "pad": 1}),
    ({"stride": (1, 1), "padding": "valid"}, {"stride": 1, "pad": 0}),
    ({"stride": (1, 1), "padding": "same", "weight_shape": (4, 3, 5, 5)}, {"stride": 1, "pad": 2}),
])
def test_cs231n_conv_param_for_expressible_cases(hparams, expected):
    assert conv_param_for(hparams) == expected
    assert adapt(cs231n)["conv2d"].constraint(hparams) is None


def test_cs231n_non_square_stride_is_rejected_not_approximated():
    conv = adapt(cs231n)["conv2d"]
    x, weight, bias = conv_inputs(17, (1, 2, 6, 6), (2, 2, 3, 3), True)
    with pytest.raises(ValueError, match="one stride for both axes"):
        conv.forward(x, weight, bias, stride=(2, 1), padding=(0, 0), dilation=(1, 1), groups=1)


def test_cs231n_pool_constraint():
    pool = adapt(cs231n)["max_pool2d"]
    base = {"kernel_size": (2, 3), "stride": (2, 2), "padding": (0, 0), "dilation": (1, 1),
            "ceil_mode": False}
    assert pool.constraint(base) is None
    assert pool_param_for(base) == {"pool_height": 2, "pool_width": 3, "stride": 2}
    assert "stride" in pool.constraint({**base, "stride": (1, 2)})
    assert "padding" in pool.constraint({**base, "padding": (1, 1)})
    assert "dilation" in pool.constraint({**base, "dilation": (2, 2)})
    assert "ceil_mode" in pool.constraint({**base, "ceil_mode": True})


def test_cs231n_adapter_passes_wrong_shape_and_dtype_through():
    """A broken module's results reach the caller unchanged, so refcheck can report them."""
    returned = {}

    def conv_forward_naive(x, w, b, conv_param):
        returned["out"] = np.zeros((1, 1, 1, 1), dtype=np.float32)  # wrong shape and dtype
        return returned["out"], None

    def conv_backward_naive(dout, cache):
        returned["dx"] = np.zeros((2, 2), dtype=np.float32)
        return returned["dx"], np.zeros(3), np.zeros(4)

    def affine_forward(x, w, b):
        return x @ w + b, (x, w)

    def affine_backward(dout, cache):
        x, w = cache
        returned["dw"] = (x.T @ dout).astype(np.float32)  # right shape (D, M), wrong dtype
        returned["db"] = np.zeros(7)  # wrong shape
        return dout @ w.T, returned["dw"], returned["db"]

    broken = adapt(module_with("broken", conv_forward_naive=conv_forward_naive,
                               conv_backward_naive=conv_backward_naive,
                               affine_forward=affine_forward, affine_backward=affine_backward))
    x, weight, bias = conv_inputs(19, (2, 3, 5, 5), (4, 3, 3, 3), True)
    out, cache = broken["conv2d"].forward(x, weight, bias, stride=(1, 1), padding=(0, 0),
                                          dilation=(1, 1), groups=1)
    assert out is returned["out"] and out.dtype == np.float32
    grad_x, _, _ = broken["conv2d"].backward(np.ones((2, 4, 3, 3)), cache)
    assert grad_x is returned["dx"]

    rng = np.random.default_rng(19)
    out, cache = broken["linear"].forward(rng.standard_normal((4, 5)), rng.standard_normal((3, 5)),
                                          rng.standard_normal(3))
    _, grad_weight, grad_bias = broken["linear"].backward(rng.standard_normal((4, 3)), cache)
    assert grad_weight.dtype == np.float32 and grad_weight.base is returned["dw"]
    assert grad_bias is returned["db"] and grad_bias.shape == (7,)


def test_cs231n_prefers_the_naive_variant():
    def forward(name):
        return lambda x, w, b, conv_param: (name, None)

    def backward(dout, cache):
        return cache

    module = module_with("variants", conv_forward_fast=forward("fast"), conv_backward_fast=backward,
                         conv_forward_naive=forward("naive"), conv_backward_naive=backward,
                         conv_forward_strides=forward("strides"))  # no backward: not a pair
    conv = adapt_cs231n(module)["conv2d"]
    assert conv.origin == "cs231n: conv_forward_naive"
    assert conv.forward(*conv_inputs(1, (1, 1, 3, 3), (1, 1, 1, 1), False), stride=(1, 1),
                        padding=(0, 0))[0] == "naive"


# --- Object adapter ----------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, weight_shape, with_bias, hparams",
                         CONV_CASES + CONV_CASES_EVEN_SAME)
def test_object_conv_matches_torch(x_shape, weight_shape, with_bias, hparams):
    conv = adapt(objects)["conv2d"]
    check_against_torch(conv.forward, conv.backward, F.conv2d,
                        conv_inputs(23, x_shape, weight_shape, with_bias),
                        n_grads=3, seed=23, hparams=hparams)


@pytest.mark.parametrize("x_shape, hparams", POOL_CASES + POOL_CASES_PADDED)
def test_object_max_pool_matches_torch_with_ties(x_shape, hparams):
    pool = adapt(objects)["max_pool2d"]
    x = tied_images(29, x_shape)
    x[..., 0, :] = -1e300  # very negative values next to the -inf padding
    check_against_torch(pool.forward, pool.backward, F.max_pool2d, [x],
                        n_grads=1, seed=29, hparams={"padding": (0, 0), **hparams})


@pytest.mark.parametrize("with_bias", [True, False])
def test_object_linear_matches_torch(with_bias):
    linear = adapt(objects)["linear"]
    arrays = linear_inputs(np.random.default_rng(31), 4, 6, 2, with_bias)
    check_against_torch(linear.forward, linear.backward, F.linear, arrays,
                        n_grads=3, seed=31, hparams={})


def test_object_relu_matches_torch_at_zero():
    x = np.random.default_rng(37).standard_normal((3, 2, 4))
    x[1, :, :2] = 0.0
    relu = adapt(objects)["relu"]
    check_against_torch(relu.forward, relu.backward, F.relu, [x], n_grads=1, seed=37, hparams={})


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_object_mse_loss_without_dout_argument_is_scaled_by_dout(reduction):
    loss = adapt(objects)["mse_loss"]
    rng = np.random.default_rng(41)
    arrays = [rng.standard_normal((3, 5)), rng.standard_normal((3, 5))]
    check_against_torch(loss.forward, loss.backward, F.mse_loss, arrays,
                        n_grads=1, seed=41, hparams={"reduction": reduction})


def test_object_accepted_follows_constructor_signatures_and_origin():
    adapted = adapt(objects)
    assert sorted(adapted) == ["conv2d", "linear", "max_pool2d", "mse_loss", "relu"]
    assert adapted["conv2d"].accepted == {"stride", "padding"}  # no dilation, no groups
    assert adapted["max_pool2d"].accepted == {"kernel_size", "stride", "padding"}
    assert adapted["mse_loss"].accepted == {"reduction"}
    assert adapted["relu"].accepted == frozenset()
    assert adapted["conv2d"].origin == "object: Conv2d"


class _LinearForward:
    """Forward of an object-style linear layer whose weight and bias the adapter sets."""

    def forward(self, x):
        self.x = x
        return x @ self.weight.T + self.bias


class _KwargsLinear(_LinearForward):
    """A linear layer whose constructor takes ``**kwargs``; gradients left on dW / db."""

    def __init__(self, **anything):
        self.received = anything

    def backward(self, dout):
        self.dW, self.db = dout.T @ self.x, dout.sum(axis=0)
        return dout @ self.weight


class _NoBiasFlag(_LinearForward):
    """A linear layer whose constructor has no ``bias`` keyword; gradients on dweight / dbias."""

    def __init__(self, in_features, out_features):
        self.shape = (out_features, in_features)

    def backward(self, dout):
        self.dweight, self.dbias = dout.T @ self.x, dout.sum(axis=0)
        return dout @ self.weight


class _ScaledLoss:
    """Half the squared error; backward takes the upstream gradient itself."""

    def __init__(self, reduction="mean"):
        self.reduction = reduction

    def forward(self, input, target):
        self.diff = input - target
        return 0.5 * (self.diff ** 2).sum()

    def backward(self, dout):
        return self.diff * dout


def test_object_registry_kwargs_constructor_and_alternative_gradient_names():
    module = module_with("registry", REFCHECK_LAYERS={"linear": _KwargsLinear, "mse_loss": _ScaledLoss})
    adapted = adapt_objects(module)
    assert adapted["linear"].accepted == frozenset()
    assert adapted["mse_loss"].accepted == {"reduction"}
    rng = np.random.default_rng(43)
    arrays = linear_inputs(rng, 3, 4, 2, with_bias=True)
    check_against_torch(adapted["linear"].forward, adapted["linear"].backward, F.linear, arrays,
                        n_grads=3, seed=43, hparams={})
    _, cache = adapted["linear"].forward(*arrays)
    assert cache.layer.received == {"in_features": 4, "out_features": 2, "bias": True}

    x, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss, cache = adapted["mse_loss"].forward(x, target, reduction="sum")
    np.testing.assert_allclose(loss, 0.5 * ((x - target) ** 2).sum())
    np.testing.assert_allclose(adapted["mse_loss"].backward(np.array(3.0), cache), 3.0 * (x - target))


def test_object_constructor_without_bias_flag_gets_zero_bias_and_no_bias_gradient():
    linear = adapt_objects(module_with("nobias", REFCHECK_LAYERS={"linear": _NoBiasFlag}))["linear"]
    arrays = linear_inputs(np.random.default_rng(47), 5, 3, 2, with_bias=False)
    check_against_torch(linear.forward, linear.backward, F.linear, arrays,
                        n_grads=3, seed=47, hparams={})


def test_object_fresh_instance_per_forward_call():
    linear = adapt(objects)["linear"]
    rng = np.random.default_rng(53)
    x_first, x_second = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    weight = rng.standard_normal((4, 3))
    _, cache_first = linear.forward(x_first, weight, None)
    _, cache_second = linear.forward(x_second, weight, None)
    assert cache_first.layer is not cache_second.layer
    dout = rng.standard_normal((2, 4))
    _, grad_weight, _ = linear.backward(dout, cache_first)
    np.testing.assert_allclose(grad_weight, dout.T @ x_first)


def test_object_missing_gradient_attribute_is_an_error_naming_the_attributes():
    class Forgetful(_NoBiasFlag):
        def backward(self, dout):
            return dout @ self.weight

    linear = adapt_objects(module_with("forgetful", REFCHECK_LAYERS={"linear": Forgetful}))["linear"]
    rng = np.random.default_rng(59)
    _, cache = linear.forward(rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), None)
    with pytest.raises(AttributeError, match="grad_weight, dweight, dW, dw, weight_grad"):
        linear.backward(rng.standard_normal((2, 4)), cache)


def test_object_discovery_ignores_classes_without_backward_and_checks_registry_names():
    class Linear:  # forward only, like torch.nn.Linear: not an object-style layer
        def forward(self, x):
            return x

    assert adapt_objects(module_with("forward_only", Linear=Linear)) == {}
    with pytest.raises(ValueError, match="unknown layer names"):
        adapt_objects(module_with("typo", REFCHECK_LAYERS={"conv": _KwargsLinear}))


# --- Precedence and the contract-style example --------------------------------------------------

def test_contract_functions_take_precedence_over_adapted_ones():
    module = module_with(
        "mixed",
        conv2d_forward=functional.conv2d_forward, conv2d_backward=functional.conv2d_backward,
        conv_forward_naive=cs231n.conv_forward_naive, conv_backward_naive=cs231n.conv_backward_naive,
        max_pool_forward_naive=cs231n.max_pool_forward_naive,
        max_pool_backward_naive=cs231n.max_pool_backward_naive,
        affine_forward=cs231n.affine_forward, affine_backward=cs231n.affine_backward,
        Linear=objects.Linear,
    )
    adapted = adapt(module)
    assert "conv2d" not in adapted  # the module's own conv2d_forward is used as it is
    assert adapted["max_pool2d"].origin == "cs231n: max_pool_forward_naive"
    assert adapted["linear"].origin == "object: Linear"  # object style wins over CS231n


def test_functional_example_is_contract_style_without_dilation():
    assert adapt(functional) == {}
    keywords = set(inspect.signature(functional.conv2d_forward).parameters) - {"x", "weight", "bias"}
    assert keywords == {"stride", "padding"}  # dilation/groups cases get skipped as unsupported


@pytest.mark.parametrize("x_shape, weight_shape, with_bias, hparams",
                         CONV_CASES + CONV_CASES_EVEN_SAME)
def test_functional_conv_matches_torch(x_shape, weight_shape, with_bias, hparams):
    check_against_torch(functional.conv2d_forward, functional.conv2d_backward, F.conv2d,
                        conv_inputs(61, x_shape, weight_shape, with_bias),
                        n_grads=3, seed=61, hparams=hparams)


@pytest.mark.parametrize("x_shape, hparams", POOL_CASES + POOL_CASES_PADDED)
def test_functional_max_pool_matches_torch_with_ties(x_shape, hparams):
    x = tied_images(67, x_shape)
    x[..., :, 0] = -1e300
    check_against_torch(functional.max_pool2d_forward, functional.max_pool2d_backward, F.max_pool2d,
                        [x], n_grads=1, seed=67, hparams={"padding": (0, 0), **hparams})


@pytest.mark.parametrize("with_bias", [True, False])
def test_functional_linear_and_relu_match_torch(with_bias):
    rng = np.random.default_rng(71)
    arrays = linear_inputs(rng, 5, 4, 3, with_bias)
    check_against_torch(functional.linear_forward, functional.linear_backward, F.linear, arrays,
                        n_grads=3, seed=71, hparams={})
    x = rng.standard_normal((2, 6))
    x[0, :3] = 0.0
    check_against_torch(functional.relu_forward, functional.relu_backward, F.relu, [x],
                        n_grads=1, seed=71, hparams={})


@pytest.mark.parametrize("module", [cs231n, objects], ids=["cs231n", "objects"])
def test_adapted_float32_stays_float32(module):
    """The adapters add no cast: the float32 examples give float32 results."""
    conv = adapt(module)["conv2d"]
    x, weight, bias = conv_inputs(73, (2, 2, 5, 5), (3, 2, 3, 3), True, dtype=np.float32)
    out, cache = conv.forward(x, weight, bias, stride=(1, 1), padding=(1, 1))
    grads = conv.backward(np.ones_like(out), cache)
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * 3
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias),
                        padding=1).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


INT_ONLY_CONV = '''
import numpy as np

class Conv2D:                       # one int each for the kernel size, the stride and the padding
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.stride, self.padding, self.k = stride, padding, kernel_size
        self.W = np.zeros((out_channels, in_channels, kernel_size, kernel_size))
        self.b = np.zeros(out_channels)

    def forward(self, x):
        s, p, k = self.stride, self.padding, self.k
        self.xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        n, c, h, w = self.xp.shape
        self.oh, self.ow = (h - k) // s + 1, (w - k) // s + 1
        out = np.zeros((n, self.W.shape[0], self.oh, self.ow), dtype=x.dtype)
        for i in range(self.oh):
            for j in range(self.ow):
                window = self.xp[:, :, i * s:i * s + k, j * s:j * s + k]
                out[:, :, i, j] = np.tensordot(window, self.W, axes=([1, 2, 3], [1, 2, 3]))
        return out + self.b[None, :, None, None]

    def backward(self, dout):
        s, p, k = self.stride, self.padding, self.k
        dxp = np.zeros_like(self.xp)
        self.dW = np.zeros_like(self.W)
        self.db = dout.sum(axis=(0, 2, 3))
        for i in range(self.oh):
            for j in range(self.ow):
                window = self.xp[:, :, i * s:i * s + k, j * s:j * s + k]
                self.dW += np.tensordot(dout[:, :, i, j], window, axes=([0], [0]))
                dxp[:, :, i * s:i * s + k, j * s:j * s + k] += np.tensordot(dout[:, :, i, j], self.W, axes=([1], [0]))
        return dxp[:, :, p:dxp.shape[2] - p, p:dxp.shape[3] - p]
'''

INT_ONLY_SPACE = '''
[conv2d]
[conv2d.grid]
kernel_size = [3, [3, 2]]
stride = [1]
padding = [1, "same", "valid"]
dtype = ["float64"]
'''


def test_an_int_only_constructor_is_not_given_padding_modes_or_non_square_kernels(tmp_path):
    """'same' / 'valid' and a (3, 2) kernel cannot be passed as one int: those configurations are
    left out as unsupported (named in the summary), never run into errors."""
    from refcheck.execution.sweep import check, plan_sweep

    (tmp_path / "my_conv.py").write_text(INT_ONLY_CONV, encoding="utf-8")
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "conv.toml").write_text(INT_ONLY_SPACE, encoding="utf-8")
    impl, folder = str(tmp_path / "my_conv.py"), str(tmp_path / "cases")
    frame = check(impl=impl, layers=["conv2d"], cases=folder, workers=0, selfcheck=False)
    assert len(frame) and set(frame["status"]) == {"passed"}, frame.loc[frame["status"] != "passed", "reason"]
    assert set(frame["padding"]) == {"(1, 1)"} and frame["weight_shape"].str.endswith(", 3, 3)").all()
    summary = plan_sweep(impl, layers="conv2d", cases=folder).unsupported["conv2d"]
    assert "Conv2D takes an int for padding; case needs padding='same'" in summary
    assert "Conv2D takes one int for kernel_size (both axes); case needs kernel_size=(3, 2)" in summary


CROSS_ENTROPY_CLASS = '''
import numpy as np


class CrossEntropyLoss:
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def forward(self, logits, target):
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        keep = target != self.ignore_index
        safe = np.where(keep, target, 0)
        w = (self.weight[safe] if self.weight is not None else np.ones(len(target), logits.dtype)) * keep
        w = w.astype(logits.dtype)
        losses = -logp[np.arange(len(target)), safe] * w
        self.cache = (logp, safe, w)
        if self.reduction == "none":
            return losses
        return losses.sum() if self.reduction == "sum" else losses.sum() / w.sum()

    def backward(self, dout):
        logp, safe, w = self.cache
        g = np.exp(logp)
        g[np.arange(len(safe)), safe] -= 1
        g *= w[:, None]
        if self.reduction == "none":
            return g * dout[:, None]
        return g * dout / (w.sum() if self.reduction == "mean" else 1)
'''


def test_a_loss_class_taking_ignore_index_gets_the_cases_that_ignore_a_class(tmp_path):
    """torch's keyword names ignore_index and label_smoothing are recognised in a constructor: the
    cases with an ignored class run (and pass); those with label smoothing, which the class has no
    argument for, are left out of the sweep as unsupported."""
    path = tmp_path / "losses.py"
    path.write_text(CROSS_ENTROPY_CLASS, encoding="utf-8")
    functions = load_implementation(str(path)).layers["cross_entropy"]
    assert {"ignore_index", "reduction"} <= functions.accepted and "label_smoothing" not in functions.accepted
    frame = check(str(path), ["cross_entropy"], workers=0, selfcheck=False)
    assert set(frame["status"]) == {"passed"}
    assert frame["case"].str.contains("-ii1-").any() and not frame["case"].str.contains("-ls").any()


AFFINE_OUT_IN = '''
import numpy as np


def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1) @ w.T + b, (x, w)     # w kept as (out, in), as torch does


def affine_backward(dout, cache):
    x, w = cache
    return (dout @ w).reshape(x.shape), dout.T @ x.reshape(x.shape[0], -1), dout.sum(axis=0)
'''


def test_a_cs231n_affine_found_in_the_out_in_layout_gets_a_zero_bias_of_out_features(tmp_path):
    """Cases without a bias pass CS231n code zeros; their count is out_features whichever layout
    the weight was found in (it was the weight's first axis, in_features here)."""
    path = tmp_path / "affine.py"
    path.write_text(AFFINE_OUT_IN, encoding="utf-8")
    frame = check(str(path), ["linear"], workers=0, selfcheck=False)
    assert frame["case"].str.contains("nobias").any()
    assert set(frame.loc[frame["status"] != "skipped", "status"]) == {"passed"}
