"""The starting parameters and the tiny synthetic data set of a model, drawn from its seed.

Both sides get the same arrays: they are drawn once in float64 here (trusted side), rounded to
the checked dtype, and handed to the user's model and to the torch twin. Parameters follow
torch's default initialisation (uniform in +-1/sqrt(fan_in)); the targets are a fixed function of
the inputs, so that a few training steps lower the loss.
"""
from __future__ import annotations

import numpy as np

from .model_file import NetworkModel

__all__ = ["at_dtype", "make_data", "make_parameters"]


def make_parameters(model: NetworkModel) -> dict[str, np.ndarray]:
    """Parameter name -> float64 array in torch's layout."""
    rng = np.random.default_rng([model.seed, 1])
    params = {}
    for entry in model.layers:
        weight_shape = entry.shapes.get("weight")
        for tensor, name in entry.names.items():
            fan_in = int(np.prod(weight_shape[1:]))
            bound = 1.0 / np.sqrt(fan_in)
            params[name] = rng.uniform(-bound, bound, size=entry.shapes[tensor])
    return params


def _chunk_means(x: np.ndarray, chunks: int) -> np.ndarray:
    """Each sample's values split into ``chunks`` contiguous groups, averaged: (N, chunks)."""
    flat = x.reshape(x.shape[0], -1)
    return np.stack([part.mean(axis=1) for part in np.array_split(flat, chunks, axis=1)], axis=1)


def make_data(model: NetworkModel) -> tuple[np.ndarray, np.ndarray]:
    """The inputs (float64, ``model.input_shape``) and the targets the loss layer expects.

    binary_cross_entropy: 0/1 floats, 1 where a chunk of the sample is positive on average;
    cross_entropy: int64 class indices, the chunk with the largest mean; mse_loss: the chunk means
    squashed by tanh.
    """
    rng = np.random.default_rng([model.seed, 2])
    x = rng.standard_normal(model.input_shape)
    loss = model.loss_layer
    target_shape = loss.shapes["target"]
    if loss.layer == "cross_entropy":
        classes = loss.shapes["input"][1]
        return x, np.argmax(_chunk_means(x, classes), axis=1).astype(np.int64)
    columns = int(np.prod(target_shape[1:]))
    means = _chunk_means(x, columns)
    if loss.layer == "binary_cross_entropy":
        return x, (means > 0).astype(np.float64).reshape(target_shape)
    return x, np.tanh(4.0 * means).reshape(target_shape)


def at_dtype(arrays: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """Floating arrays rounded to ``dtype``; integer arrays unchanged."""
    return {name: value.astype(dtype) if value.dtype.kind == "f" else value.copy() for name, value in arrays.items()}
