"""Built-in layers on an empty batch (N = 0), against torch: the same output shapes, empty input
gradients and zero parameter gradients of the parameters' shapes, and unchanged running statistics.

These layers used to raise there (a reshape with -1 is ambiguous on a zero-size array; a maximum
over an empty axis has no identity; batch_norm refused to train on fewer than two values).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from refcheck.layers import (
    adaptive_max_pool2d_backward,
    adaptive_max_pool2d_forward,
    batch_norm_backward,
    batch_norm_forward,
    conv2d_backward,
    conv2d_forward,
    group_norm_backward,
    group_norm_forward,
    log_softmax_backward,
    log_softmax_forward,
    softmax_backward,
    softmax_forward,
)

RNG = np.random.default_rng(0)


def _torch(function, arrays: dict, **kwargs):
    """torch's output and the gradient of every array (ones upstream), in float64."""
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    out = function(*leaves.values(), **kwargs)
    out.backward(torch.ones_like(out))
    return out.detach().numpy(), {k: leaf.grad.numpy() for k, leaf in leaves.items()}


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


def _assert_like(actual: np.ndarray, expected: np.ndarray, name: str) -> None:
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape}, torch {expected.shape}"
    assert actual.dtype == np.float64, f"{name}: dtype {actual.dtype}"
    np.testing.assert_array_equal(actual, expected, err_msg=name)


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 1, 2), (1, 1, 2, 4), ((2, 1), 2, 1, 1)])
def test_conv2d(stride, padding, dilation, groups):
    x, weight, bias = np.zeros((0, 4, 7, 7)), RNG.standard_normal((8, 4 // groups, 3, 3)), RNG.standard_normal(8)
    out, cache = conv2d_forward(x, weight, bias, stride=_pair(stride), padding=_pair(padding),
                                dilation=_pair(dilation), groups=groups)
    grads = conv2d_backward(np.ones(out.shape), cache)
    expected, torch_grads = _torch(F.conv2d, {"x": x, "weight": weight, "bias": bias}, stride=stride, padding=padding,
                                   dilation=dilation, groups=groups)
    _assert_like(out, expected, "output")
    for grad, name in zip(grads, ("x", "weight", "bias")):
        _assert_like(grad, torch_grads[name], f"grad_{name}")


def test_adaptive_max_pool2d():
    x = np.zeros((0, 3, 7, 5))
    out, cache = adaptive_max_pool2d_forward(x, output_size=(3, 2))
    grad = adaptive_max_pool2d_backward(np.ones(out.shape), cache)
    expected, torch_grads = _torch(F.adaptive_max_pool2d, {"x": x}, output_size=(3, 2))
    _assert_like(out, expected, "output")
    _assert_like(grad, torch_grads["x"], "grad_x")


@pytest.mark.parametrize("shape", [(0, 4, 3, 2), (0, 4, 5), (0, 4)])
def test_group_norm(shape):
    x, weight, bias = np.zeros(shape), RNG.standard_normal(4), RNG.standard_normal(4)
    out, cache = group_norm_forward(x, weight, bias, num_groups=2, eps=1e-5)
    grads = group_norm_backward(np.ones(out.shape), cache)
    def torch_group_norm(x, weight, bias):
        return F.group_norm(x, 2, weight, bias, eps=1e-5)

    expected, torch_grads = _torch(torch_group_norm, {"x": x, "weight": weight, "bias": bias})
    _assert_like(out, expected, "output")
    for grad, name in zip(grads, ("x", "weight", "bias")):
        _assert_like(grad, torch_grads[name], f"grad_{name}")


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4, 4)])
def test_batch_norm_training_keeps_the_running_statistics(shape):
    x, weight, bias = np.zeros(shape), RNG.standard_normal(3), RNG.standard_normal(3)
    running_mean, running_var = RNG.standard_normal(3), RNG.random(3) + 0.5
    (out, new_mean, new_var), cache = batch_norm_forward(x, running_mean, running_var, weight, bias, training=True,
                                                         momentum=0.1, eps=1e-5)
    grads = batch_norm_backward(np.ones(out.shape), cache)
    torch_mean, torch_var = torch.tensor(running_mean), torch.tensor(running_var)

    def torch_batch_norm(x, weight, bias):
        return F.batch_norm(x, torch_mean, torch_var, weight, bias, training=True, momentum=0.1, eps=1e-5)

    expected, torch_grads = _torch(torch_batch_norm, {"x": x, "weight": weight, "bias": bias})
    _assert_like(out, expected, "output")
    _assert_like(new_mean, torch_mean.numpy(), "running_mean")
    _assert_like(new_var, torch_var.numpy(), "running_var")
    for grad, name in zip(grads, ("x", "weight", "bias")):
        _assert_like(grad, torch_grads[name], f"grad_{name}")


def test_batch_norm_still_refuses_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm_forward(np.zeros((1, 3)), None, None, None, None, training=True, momentum=0.1, eps=1e-5)


@pytest.mark.parametrize("forward, backward, torch_function", [(softmax_forward, softmax_backward, F.softmax),
                                                               (log_softmax_forward, log_softmax_backward, F.log_softmax)])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_over_any_axis(forward, backward, torch_function, dim):
    x = np.zeros((0, 5))
    out, cache = forward(x, dim=dim)
    grad = backward(np.ones(out.shape), cache)
    expected, torch_grads = _torch(torch_function, {"x": x}, dim=dim)
    _assert_like(out, expected, "output")
    _assert_like(grad, torch_grads["x"], "grad_x")
