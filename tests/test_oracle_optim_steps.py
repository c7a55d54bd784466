"""The optimizer wrappers run each step's body directly (in an oracle process, no torch._dynamo
import): the results are torch.optim's own ``step()`` results, bit for bit, over every optimizer case
of the full sweep."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from refcheck.cases import make_inputs
from refcheck.execution.sweep import plan_sweep
from refcheck.oracle import wrappers_optim
from refcheck.specs.optim_specs import STATE_KEYS

RULES = ("sgd", "rmsprop", "adam", "adamw")


def _with_plain_step(rule, param, grads, hparams):
    """The same loop as the wrapper, through ``optimizer.step()`` as a user calls it."""
    tensor = param.detach().clone().requires_grad_(True)
    optimizer = wrappers_optim._OPTIMIZERS[rule]([tensor], foreach=False, **hparams)
    after_each = []
    for grad in grads:
        tensor.grad = grad.detach().clone()
        optimizer.step()
        after_each.append(tensor.detach().clone())
    state = optimizer.state[tensor]
    return (*after_each, *[state[k].detach().clone() if state.get(k) is not None else None for k in STATE_KEYS[rule]])


@pytest.mark.parametrize("rule", RULES)
def test_wrapper_steps_equal_torchs_step_on_every_case(rule):
    cases = plan_sweep(layers=rule).cases
    assert cases
    for case in cases:
        inputs = make_inputs(case)
        param, grads = (torch.from_numpy(inputs[name]) for name in ("param", "grads"))
        got = getattr(wrappers_optim, rule)(param, grads, **case.hparam_map)
        expected = _with_plain_step(rule, param, grads, dict(case.hparam_map))
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert (a is None and b is None) or torch.equal(a, b), (case.id, a, b)


def test_differentiable_optimizer_keeps_torchs_own_step():
    tensor = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([tensor], lr=0.1, differentiable=True)
    assert wrappers_optim._step_body(optimizer) == optimizer.step
    plain = torch.optim.SGD([tensor], lr=0.1)
    assert wrappers_optim._step_body(plain) != plain.step


def test_optimizer_references_in_an_oracle_process_do_not_import_the_compiler():
    code = ("import sys\n"
            "from refcheck.oracle import compute_references, oracle_worker_start\n"
            "oracle_worker_start()  # as an oracle process starts\n"
            "from refcheck.execution.sweep import plan_sweep\n"
            f"compute_references(plan_sweep(layers={','.join(RULES)!r}, quick=True).cases, None)\n"
            "print('torch._dynamo' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
