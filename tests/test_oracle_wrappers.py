"""The torch wrappers of refcheck.oracle.wrappers_norm agree with torch's own calls.

dropout: torch draws its mask inside F.dropout; dropping a tensor of ones after the same
manual_seed shows which elements it kept, and the wrapper given that mask must reproduce F.dropout's
output and gradient bit for bit. batch_norm / instance_norm: the wrappers return what torch writes
into the running statistics, and leave the caller's tensors alone.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from refcheck.oracle import wrappers_norm


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dropout_wrapper_is_torchs_dropout_with_the_drawn_mask(p, dtype):
    x = torch.randn(4, 7, dtype=dtype, generator=torch.Generator().manual_seed(1), requires_grad=True)
    torch.manual_seed(11)
    expected = F.dropout(x, p, training=True)
    torch.manual_seed(11)
    kept = F.dropout(torch.ones_like(x), p, training=True) != 0
    got = wrappers_norm.dropout(x, kept, p=p, training=True)
    assert torch.equal(got, expected)
    g = torch.randn_like(x)
    (expected_grad,) = torch.autograd.grad(expected, x, g)
    (got_grad,) = torch.autograd.grad(got, x, g)
    assert torch.equal(got_grad, expected_grad)


def test_dropout_wrapper_outside_training_is_the_identity():
    x = torch.randn(3, 3, dtype=torch.float64)
    assert torch.equal(wrappers_norm.dropout(x, torch.zeros(3, 3, dtype=torch.bool), p=0.5, training=False), x)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_wrapper_returns_torchs_running_update(training):
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    mean, var = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64) + 0.5
    before = mean.clone(), var.clone()
    out, new_mean, new_var = wrappers_norm.batch_norm(x, mean, var, None, None, training=training, momentum=0.3,
                                                      eps=1e-5)
    assert torch.equal(mean, before[0]) and torch.equal(var, before[1])
    torch_mean, torch_var = mean.clone(), var.clone()
    expected = F.batch_norm(x, torch_mean, torch_var, None, None, training=training, momentum=0.3, eps=1e-5)
    assert torch.equal(out, expected) and torch.equal(new_mean, torch_mean) and torch.equal(new_var, torch_var)
    if training:
        unbiased = x.var(dim=(0, 2), unbiased=True)
        torch.testing.assert_close(new_var, 0.7 * var + 0.3 * unbiased)


def test_instance_norm_wrapper_returns_torchs_running_update():
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    mean, var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    out, new_mean, _new_var = wrappers_norm.instance_norm(x, mean, var, None, None, use_input_stats=True,
                                                         momentum=0.1, eps=1e-5)
    torch.testing.assert_close(new_mean, 0.1 * x.mean(dim=2).mean(dim=0))
    assert torch.equal(mean, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(out, F.instance_norm(x, eps=1e-5))
