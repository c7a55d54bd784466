"""Tests of refcheck.layers.attention against torch autograd (math backend), per-head loop twins
and planted mistakes."""
from __future__ import annotations

import math
from functools import partial

import helpers
import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from twins_recurrent import (
    multi_head_attention_loops,
    scaled_dot_product_attention_loops,
)

from refcheck.layers.attention import (
    multi_head_attention_backward,
    multi_head_attention_forward,
    scaled_dot_product_attention_backward,
    scaled_dot_product_attention_forward,
)

DTYPES = [np.float32, np.float64]
TOLERANCES = {np.float32: (1e-5, 2e-5), np.float64: (1e-10, 1e-12)}
assert_matches = partial(helpers.assert_matches, tolerances=TOLERANCES)
SDPA_GRADS = ("grad_query", "grad_key", "grad_value")
MHA_GRADS = ("grad_query", "grad_key", "grad_value", "grad_in_proj_weight", "grad_in_proj_bias",
             "grad_out_proj_weight", "grad_out_proj_bias")

# ------------------------------------------------------------------- scaled_dot_product_attention

# (lead axes, L, S, E, Ev, mask kind, is_causal, scale); mask kinds: none, bool, float,
# bool-row (one query row fully masked), float-row (same with -inf), bool-bcast ((L, S) only)
SDPA_CASES = [
    ((2,), 3, 4, 5, 2, "none", False, None),
    ((2, 3), 4, 4, 3, 3, "none", True, None),
    ((1, 2), 5, 3, 2, 4, "none", True, None),  # L > S: causal triangle is top-left aligned
    ((2, 1), 2, 5, 4, 3, "none", True, 0.7),  # L < S
    ((2, 2), 3, 4, 4, 2, "bool", False, None),
    ((2,), 4, 3, 3, 3, "float", False, 2.0),
    ((2, 2), 3, 5, 2, 2, "bool-row", False, None),
    ((1, 3), 4, 4, 3, 2, "float-row", False, None),
    ((2, 2), 3, 4, 3, 3, "bool-bcast", False, 0.25),
]
SDPA_IDS = ["lead{}-L{}-S{}-E{}-Ev{}-{}-causal{:d}-scale{}".format(
    "x".join(map(str, c[0])), *c[1:]) for c in SDPA_CASES]


def sdpa_inputs(case, dtype, seed):
    lead, length, source, embed, embed_v, kind, is_causal, scale = case
    rng = np.random.default_rng(seed)
    query = rng.standard_normal(lead + (length, embed)).astype(dtype)
    key = rng.standard_normal(lead + (source, embed)).astype(dtype)
    value = rng.standard_normal(lead + (source, embed_v)).astype(dtype)
    mask = None
    if kind.startswith("bool"):
        shape = (length, source) if kind == "bool-bcast" else lead + (length, source)
        mask = rng.random(shape) < 0.7
        mask[..., 0] = True  # no fully masked row unless the case asks for one
        if kind == "bool-row":
            mask[..., 1, :] = False
    elif kind.startswith("float"):
        mask = rng.standard_normal(lead + (length, source)).astype(dtype)
        if kind == "float-row":
            mask[..., 2, :] = -np.inf
            mask[..., 0, 1] = -np.inf
    dout = rng.standard_normal(lead + (length, embed_v)).astype(dtype)
    return (query, key, value, mask), {"is_causal": is_causal, "scale": scale}, dout


def torch_sdpa(arrays, hyper, dout):
    query, key, value, mask = arrays
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True)
              for a in (query, key, value)]
    torch_mask = None
    if mask is not None:
        torch_mask = torch.tensor(mask if mask.dtype == bool else mask.astype(np.float64))
    with sdpa_kernel(SDPBackend.MATH):
        out = torch.nn.functional.scaled_dot_product_attention(*leaves, torch_mask, **hyper)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), tuple(leaf.grad.numpy() for leaf in leaves)


def run_sdpa(arrays, hyper, dout, layers=None):
    forward, backward = layers or (scaled_dot_product_attention_forward,
                                   scaled_dot_product_attention_backward)
    out, cache = forward(*arrays, **hyper)
    return out, tuple(backward(dout, cache))


def check(out, grads, expected_out, expected_grads, dtype, names, case_id):
    assert_matches(out, expected_out, dtype, f"output [{case_id}]")
    assert len(grads) == len(names)
    for name, actual, expected in zip(names, grads, expected_grads):
        if expected is None:
            assert actual is None, f"{name} should be None [{case_id}]"
        else:
            assert_matches(actual, expected, dtype, f"{name} [{case_id}]")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", SDPA_CASES, ids=SDPA_IDS)
def test_sdpa_matches_torch(case, dtype) -> None:
    arrays, hyper, dout = sdpa_inputs(case, dtype, seed=7 * case[1] + case[3])
    out, grads = run_sdpa(arrays, hyper, dout)
    expected_out, expected_grads = torch_sdpa(arrays, hyper, dout)
    check(out, grads, expected_out, expected_grads, dtype, SDPA_GRADS, str(case))


@pytest.mark.parametrize("case", SDPA_CASES, ids=SDPA_IDS)
def test_sdpa_matches_loop_twin(case) -> None:
    arrays, hyper, dout = sdpa_inputs(case, np.float64, seed=3)
    out, grads = run_sdpa(arrays, hyper, dout)
    twin_out, twin_grads = scaled_dot_product_attention_loops(*arrays, dout, **hyper)
    check(out, grads, twin_out, twin_grads, np.float64, SDPA_GRADS, str(case))


@pytest.mark.parametrize("kind", ["bool-row", "float-row"])
def test_fully_masked_row_is_zero_with_zero_gradient(kind) -> None:
    """torch's math backend (2.5+) returns zeros, not NaN, for a query with no allowed key."""
    case = next(c for c in SDPA_CASES if c[5] == kind)
    arrays, hyper, dout = sdpa_inputs(case, np.float64, seed=1)
    row = 1 if kind == "bool-row" else 2
    expected_out, expected_grads = torch_sdpa(arrays, hyper, dout)
    assert np.all(expected_out[..., row, :] == 0) and np.all(expected_grads[0][..., row, :] == 0)
    out, grads = run_sdpa(arrays, hyper, dout)
    assert np.all(out[..., row, :] == 0) and np.all(grads[0][..., row, :] == 0)
    assert all(np.isfinite(g).all() for g in grads)


def test_sdpa_validity() -> None:
    query = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention_forward(query, query, query, dropout_p=0.1)
    with pytest.raises(ValueError, match="is_causal"):
        scaled_dot_product_attention_forward(query, query, query, np.ones((2, 2), bool),
                                             is_causal=True)
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention_forward(query, query, query, np.ones((3, 2), bool))
    with pytest.raises(ValueError):
        scaled_dot_product_attention_forward(query, np.zeros((1, 2, 4)), query)


def test_sdpa_inputs_not_mutated_and_results_fresh() -> None:
    arrays, hyper, dout = sdpa_inputs(SDPA_CASES[4], np.float64, seed=2)
    for array in (*arrays, dout):
        array.flags.writeable = False
    out, grads = run_sdpa(arrays, hyper, dout)
    for result in (out, *grads):
        assert not any(np.shares_memory(result, a) for a in (*arrays, dout))


# --------------------------------------------------------------------------- multi_head_attention

# (batch, L, S, E, num_heads, in_bias, out_bias, mask kind); mask kinds as torch's MHA:
# bool True = NOT allowed; "bool-row" fully masks one query row.
MHA_CASES = [
    (2, 3, 3, 4, 2, True, True, "none"),
    (2, 4, 3, 6, 3, True, False, "bool"),
    (1, 3, 5, 4, 1, False, True, "float"),
    (2, 2, 4, 8, 4, False, False, "bool-heads"),
    (2, 3, 4, 6, 2, True, True, "bool-row"),
]
MHA_IDS = ["n{}-L{}-S{}-E{}-h{}-inb{:d}-outb{:d}-{}".format(*c) for c in MHA_CASES]


def mha_inputs(case, dtype, seed):
    batch, length, source, embed, heads, in_bias, out_bias, kind = case
    rng = np.random.default_rng(seed)

    def draw(*shape):
        return rng.standard_normal(shape).astype(dtype)

    arrays = [draw(batch, length, embed), draw(batch, source, embed), draw(batch, source, embed),
              draw(3 * embed, embed) / np.sqrt(embed).astype(dtype),
              draw(3 * embed) if in_bias else None,
              draw(embed, embed) / np.sqrt(embed).astype(dtype), draw(embed) if out_bias else None]
    mask = None
    if kind in ("bool", "bool-row"):
        mask = rng.random((length, source)) < 0.3
        mask[:, 0] = False
        if kind == "bool-row":
            mask[1] = True
    elif kind == "bool-heads":
        mask = rng.random((batch * heads, length, source)) < 0.3
        mask[..., 0] = False
    elif kind == "float":
        mask = draw(length, source)
    return arrays, {"num_heads": heads, "attn_mask": mask}, draw(batch, length, embed)


def torch_mha(arrays, hyper, dout):
    leaves = [None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)
              for a in arrays]
    query, key, value, in_w, in_b, out_w, out_b = leaves
    mask = hyper["attn_mask"]
    if mask is not None:
        mask = torch.tensor(mask if mask.dtype == bool else mask.astype(np.float64))
    embed = query.shape[-1]
    # The functional form is sequence-first: (L, N, E).
    out, _ = torch.nn.functional.multi_head_attention_forward(
        query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), embed,
        hyper["num_heads"], in_w, in_b, None, None, False, 0.0, out_w, out_b,
        training=False, need_weights=False, attn_mask=mask,
    )
    out = out.transpose(0, 1)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), tuple(None if a is None else a.grad.numpy() for a in leaves)


def run_mha(arrays, hyper, dout):
    out, cache = multi_head_attention_forward(*arrays, **hyper)
    return out, tuple(multi_head_attention_backward(dout, cache))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", MHA_CASES, ids=MHA_IDS)
def test_mha_matches_torch_functional(case, dtype) -> None:
    arrays, hyper, dout = mha_inputs(case, dtype, seed=case[3] + case[4])
    out, grads = run_mha(arrays, hyper, dout)
    expected_out, expected_grads = torch_mha(arrays, hyper, dout)
    check(out, grads, expected_out, expected_grads, dtype, MHA_GRADS, str(case))


def test_mha_matches_torch_module_batch_first() -> None:
    """Weights copied into torch.nn.MultiheadAttention(batch_first=True)."""
    arrays, hyper, _ = mha_inputs(MHA_CASES[1], np.float64, seed=4)
    query, key, value, in_w, in_b, out_w, _ = arrays
    module = torch.nn.MultiheadAttention(6, 3, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.tensor(in_w))
        module.in_proj_bias.copy_(torch.tensor(in_b))
        module.out_proj.weight.copy_(torch.tensor(out_w))
        module.out_proj.bias.zero_()
    module.eval()
    expected, _ = module(*(torch.tensor(a) for a in (query, key, value)),
                         attn_mask=torch.tensor(hyper["attn_mask"]), need_weights=False)
    arrays[6] = np.zeros(6)
    out, _ = multi_head_attention_forward(*arrays, **hyper)
    assert_matches(out, expected.detach().numpy(), np.float64, "output")


@pytest.mark.parametrize("case", MHA_CASES, ids=MHA_IDS)
def test_mha_matches_per_head_loop_twin(case) -> None:
    arrays, hyper, dout = mha_inputs(case, np.float64, seed=8)
    out, grads = run_mha(arrays, hyper, dout)
    twin_out, twin_grads = multi_head_attention_loops(*arrays, dout, **hyper)
    check(out, grads, twin_out, twin_grads, np.float64, MHA_GRADS, str(case))


def test_mha_validity() -> None:
    x = np.zeros((1, 2, 6))
    weights = (np.zeros((18, 6)), None, np.zeros((6, 6)), None)
    with pytest.raises(ValueError, match="divisible"):
        multi_head_attention_forward(x, x, x, *weights, num_heads=4)
    with pytest.raises(ValueError, match="need_weights"):
        multi_head_attention_forward(x, x, x, *weights, num_heads=2, need_weights=True)
    with pytest.raises(ValueError, match="attn_mask"):
        multi_head_attention_forward(x, x, x, *weights, num_heads=2,
                                     attn_mask=np.zeros((3, 2), bool))


# ------------------------------------------------------------------------------ planted mistakes


def _softmax(scores, axis):
    exps = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return exps / exps.sum(axis=axis, keepdims=True)


def sdpa_forward_scaled_by_d(query, key, value, attn_mask=None, *, is_causal=False, scale=None):
    """Divides the scores by E instead of sqrt(E)."""
    scores = query @ np.swapaxes(key, -1, -2) / query.shape[-1]
    return _softmax(scores, -1) @ value, None


def sdpa_forward_softmax_wrong_axis(query, key, value, attn_mask=None, *, is_causal=False,
                                    scale=None):
    """Normalises over the queries (axis -2) instead of over the keys."""
    scores = query @ np.swapaxes(key, -1, -2) / math.sqrt(query.shape[-1])
    return _softmax(scores, -2) @ value, None


@pytest.mark.parametrize("wrong", [sdpa_forward_scaled_by_d, sdpa_forward_softmax_wrong_axis])
def test_planted_attention_mistakes_are_caught(wrong) -> None:
    arrays, hyper, dout = sdpa_inputs(SDPA_CASES[0], np.float64, seed=6)
    expected_out, _ = torch_sdpa(arrays, hyper, dout)
    right, _ = scaled_dot_product_attention_forward(*arrays, **hyper)
    np.testing.assert_allclose(right, expected_out, rtol=1e-10, atol=1e-12)
    assert not np.allclose(wrong(*arrays, **hyper)[0], expected_out, rtol=1e-10, atol=1e-12)


def test_loop_twins_match_torch() -> None:
    """The twins are oracles only if they agree with torch themselves."""
    arrays, hyper, dout = sdpa_inputs(SDPA_CASES[6], np.float64, seed=5)
    twin_out, twin_grads = scaled_dot_product_attention_loops(*arrays, dout, **hyper)
    check(twin_out, twin_grads, *torch_sdpa(arrays, hyper, dout), np.float64, SDPA_GRADS, "sdpa")
    arrays, hyper, dout = mha_inputs(MHA_CASES[4], np.float64, seed=5)
    twin_out, twin_grads = multi_head_attention_loops(*arrays, dout, **hyper)
    check(twin_out, twin_grads, *torch_mha(arrays, hyper, dout), np.float64, MHA_GRADS, "mha")
