"""Tests of the embedding layer: torch autograd, a loop twin, repeated indices, padding_idx,
torch's range checks, and planted mistakes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from twins_embedding import embedding_loops

from refcheck.layers.embedding import embedding_backward, embedding_forward

# (indices shape, num_embeddings, embedding_dim, padding_idx, seed). Few rows against many
# positions, so that indices repeat; some rows are never looked up.
CASES = [
    ((6,), 4, 3, None, 1),
    ((3, 5), 5, 2, None, 2),
    ((2, 3, 4), 6, 4, 2, 3),
    ((4, 4), 3, 5, 0, 4),
    ((5,), 7, 3, -1, 5),  # negative padding_idx: the last row
    ((), 4, 3, None, 6),  # a single index, 0-d
    ((8,), 9, 2, 8, 7),
    ((3, 3), 10, 1, None, 8),  # more rows than positions: most rows get no gradient
]
IDS = [f"idx{'x'.join(map(str, s)) or 'scalar'}-rows{r}-dim{d}-pad{p}" for s, r, d, p, _ in CASES]
TOLERANCES = {np.float64: 1e-12, np.float32: 1e-5}


def make_inputs(shape, rows, dim, padding_idx, seed, dtype):
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, rows, size=shape)
    if padding_idx is not None and indices.size > 1:
        indices.flat[0] = padding_idx % rows  # the padding row is looked up at least once
        indices.flat[-1] = indices.flat[1]  # and some index repeats
    weight = rng.standard_normal((rows, dim)).astype(dtype)
    dout = rng.standard_normal((*shape, dim)).astype(dtype)
    return indices.astype(np.int64), weight, dout


def torch_embedding(indices, weight, dout, padding_idx):
    leaf = torch.tensor(weight, dtype=torch.float64, requires_grad=True)
    out = F.embedding(torch.tensor(indices), leaf, padding_idx=padding_idx)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), leaf.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, rows, dim, padding_idx, seed", CASES, ids=IDS)
def test_matches_torch_and_loop_twin(shape, rows, dim, padding_idx, seed, dtype) -> None:
    indices, weight, dout = make_inputs(shape, rows, dim, padding_idx, seed, dtype)
    out, cache = embedding_forward(indices, weight, padding_idx=padding_idx)
    (grad_weight,) = embedding_backward(dout, cache)
    assert out.dtype == dtype and grad_weight.dtype == dtype
    expected_out, expected_grad = torch_embedding(indices, weight, dout, padding_idx)
    rtol = TOLERANCES[dtype]
    np.testing.assert_allclose(out, expected_out, rtol=rtol, atol=0, err_msg="output")
    np.testing.assert_allclose(grad_weight, expected_grad, rtol=rtol, atol=rtol,
                               err_msg="grad_weight")
    twin_out, (twin_grad,) = embedding_loops(indices, weight, dout, padding_idx=padding_idx)
    np.testing.assert_allclose(out, twin_out, rtol=rtol, atol=0, err_msg="output vs twin")
    np.testing.assert_allclose(grad_weight, twin_grad, rtol=rtol, atol=rtol,
                               err_msg="grad_weight vs twin")


def test_repeated_indices_accumulate_by_hand() -> None:
    weight = np.arange(6.0).reshape(3, 2)
    indices = np.array([[2, 0], [2, 2]])
    dout = np.array([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    out, cache = embedding_forward(indices, weight, padding_idx=None)
    np.testing.assert_array_equal(out[1, 1], [4.0, 5.0])
    (grad_weight,) = embedding_backward(dout, cache)
    # Row 2 is used three times: (1, 2) + (5, 6) + (7, 8); row 1 never.
    np.testing.assert_array_equal(grad_weight, [[3.0, 4.0], [0.0, 0.0], [13.0, 16.0]])


def test_padding_row_is_looked_up_but_gets_no_gradient() -> None:
    weight = np.arange(6.0).reshape(3, 2)
    out, cache = embedding_forward(np.array([1, 1, 0]), weight, padding_idx=1)
    np.testing.assert_array_equal(out[0], [2.0, 3.0])  # not zeroed in the forward
    (grad_weight,) = embedding_backward(np.ones((3, 2)), cache)
    np.testing.assert_array_equal(grad_weight, [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize("bad_index", [3, -1])
def test_index_out_of_range_raises_like_torch(bad_index) -> None:
    weight = np.zeros((3, 2))
    indices = np.array([0, bad_index])
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(torch.tensor(indices), torch.tensor(weight))
    with pytest.raises(IndexError, match="out of range"):
        embedding_forward(indices, weight, padding_idx=None)  # numpy would wrap -1


@pytest.mark.parametrize("padding_idx", [3, -4])
def test_padding_idx_out_of_range_raises_like_torch(padding_idx) -> None:
    weight = np.zeros((3, 2))
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        F.embedding(torch.tensor([0]), torch.tensor(weight), padding_idx=padding_idx)
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        embedding_forward(np.array([0]), weight, padding_idx=padding_idx)


def test_int32_indices_accepted_and_floats_rejected() -> None:
    weight = np.arange(6.0).reshape(3, 2)
    out, _ = embedding_forward(np.array([2, 0], dtype=np.int32), weight, padding_idx=None)
    np.testing.assert_array_equal(out, [[4.0, 5.0], [0.0, 1.0]])
    with pytest.raises(TypeError, match="integers"):
        embedding_forward(np.array([1.0]), weight, padding_idx=None)


def test_inputs_not_mutated_and_results_fresh() -> None:
    indices, weight, dout = make_inputs((3, 4), 5, 2, 1, 9, np.float64)
    for array in (indices, weight, dout):
        array.flags.writeable = False
    out, cache = embedding_forward(indices, weight, padding_idx=1)
    (grad_weight,) = embedding_backward(dout, cache)
    for result in (out, grad_weight):
        assert not any(np.shares_memory(result, a) for a in (indices, weight, dout))


# --- planted mistakes ------------------------------------------------------------------------

def _assigned(indices, dout, rows, padding_row):
    grad = np.zeros((rows, dout.shape[-1]))
    grad[indices.reshape(-1)] = dout.reshape(-1, dout.shape[-1])  # last write wins
    grad[padding_row] = 0
    return grad


def _padding_not_zeroed(indices, dout, rows, padding_row):
    grad = np.zeros((rows, dout.shape[-1]))
    np.add.at(grad, indices.reshape(-1), dout.reshape(-1, dout.shape[-1]))
    return grad


def _accumulated(indices, dout, rows, padding_row):
    grad = np.zeros((rows, dout.shape[-1]))
    np.add.at(grad, indices.reshape(-1), dout.reshape(-1, dout.shape[-1]))
    grad[padding_row] = 0
    return grad


@pytest.mark.parametrize(
    "backward, caught",
    [(_assigned, True), (_padding_not_zeroed, True), (_accumulated, False)],
    ids=["gradient-assigned-not-accumulated", "padding-row-not-zeroed", "control"],
)
def test_planted_mistake_is_caught(backward, caught) -> None:
    indices, weight, dout = make_inputs((2, 3, 4), 6, 4, 2, 3, np.float64)
    _, expected_grad = torch_embedding(indices, weight, dout, padding_idx=2)
    grad = backward(indices, dout, 6, 2)
    assert (not np.allclose(grad, expected_grad, rtol=1e-12, atol=1e-12)) == caught


def test_the_self_check_holds_the_padding_row_as_torch_defines_it():
    """The padding row's gradient is zero by definition though the forward reads that row: a
    correct backward (refcheck's own) agrees with its own forward everywhere else."""
    from refcheck.execution.sweep import check

    frame = check(None, ["embedding"], workers=0)
    padded = frame[(frame["padding_idx"].astype(str) != "None") & frame["padding_idx"].notna()
                   & (frame["tensor"] == "grad_weight")]
    assert len(padded) and set(padded["selfcheck"]) == {"ok"}
