"""Slow loop twins of the normalisation layers, an independent oracle in tests.

Every layer is written as: a list of groups (the index tuples that share one mean and
variance), statistics summed element by element in Python floats, and a backward that
multiplies the upstream gradient by the explicit Jacobian of the standardisation::

    d xhat[j] / d x[i] = inv_std * (delta_ij - 1 / M - xhat[i] * xhat[j] / M)

instead of the closed form used by refcheck.layers.normalization. Affine parameters are applied
and differentiated entry by entry with ``+=``. Nothing here reuses refcheck.layers.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "batch_norm_loops",
    "group_norm_loops",
    "instance_norm_loops",
    "layer_norm_loops",
]

Index = tuple[int, ...]


def _groups(shape: tuple[int, ...], key: Callable[[Index], Index]) -> list[list[Index]]:
    """Indices of an array of ``shape`` grouped by ``key(index)``, in first-seen order."""
    groups: dict[Index, list[Index]] = {}
    for index in np.ndindex(*shape):
        groups.setdefault(key(index), []).append(index)
    return list(groups.values())


def _statistics(x: np.ndarray, members: list[Index]) -> tuple[float, float]:
    """Mean and biased variance of ``x`` over ``members``, by plain sums."""
    count = len(members)
    mean = sum(float(x[i]) for i in members) / count
    var = sum((float(x[i]) - mean) ** 2 for i in members) / count
    return mean, var


def _run(
    x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, dout: np.ndarray,
    groups: list[list[Index]], param_index: Callable[[Index], Index], eps: float,
    fixed: Callable[[list[Index]], tuple[float, float]] | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray | None, ...]]:
    """Standardise each group, apply the affine map, and backpropagate ``dout``.

    ``fixed(members)``, when given, returns the (mean, var) to use instead of the group's own
    (running statistics): they are constants, so the Jacobian is then ``inv_std * delta_ij``.
    """
    xhat = np.zeros(x.shape)
    grad_input = np.zeros(x.shape)
    grad_weight = None if weight is None else np.zeros(weight.shape)
    grad_bias = None if bias is None else np.zeros(bias.shape)
    out = np.zeros(x.shape)
    grad_xhat = np.zeros(x.shape)
    for members in groups:
        mean, var = _statistics(x, members) if fixed is None else fixed(members)
        inv_std = 1.0 / math.sqrt(var + eps)
        for i in members:
            xhat[i] = (float(x[i]) - mean) * inv_std
            p = param_index(i)
            scale = 1.0 if weight is None else float(weight[p])
            out[i] = xhat[i] * scale + (0.0 if bias is None else float(bias[p]))
            grad_xhat[i] = float(dout[i]) * scale
            if grad_weight is not None:
                grad_weight[p] += float(dout[i]) * xhat[i]
            if grad_bias is not None:
                grad_bias[p] += float(dout[i])
        count = len(members)
        for i in members:
            total = 0.0
            for j in members:
                if fixed is None:
                    jacobian = inv_std * ((i == j) - 1.0 / count - xhat[i] * xhat[j] / count)
                else:
                    jacobian = inv_std * (i == j)
                total += jacobian * grad_xhat[j]
            grad_input[i] = total
    return out, (grad_input, grad_weight, grad_bias)


def _running_loops(
    running: np.ndarray | None, batch: list[float], momentum: float
) -> np.ndarray | None:
    if running is None:
        return None
    return np.array([(1 - momentum) * float(r) + momentum * b for r, b in zip(running, batch)])


def batch_norm_loops(
    x, running_mean, running_var, weight, bias, dout, *, training, momentum, eps
):
    """((out, new_running_mean, new_running_var), (grad_input, grad_weight, grad_bias))."""
    groups = _groups(x.shape, lambda i: (i[1],))  # one group per channel
    fixed = None
    if training:
        batch_mean, batch_var = [], []
        for members in groups:
            mean, var = _statistics(x, members)
            count = len(members)
            batch_mean.append(mean)
            batch_var.append(var * count / (count - 1))  # torch tracks the unbiased variance
        new_mean = _running_loops(running_mean, batch_mean, momentum)
        new_var = _running_loops(running_var, batch_var, momentum)
    else:
        def fixed(members):
            channel = members[0][1]
            return float(running_mean[channel]), float(running_var[channel])
        new_mean, new_var = running_mean.copy(), running_var.copy()
    out, grads = _run(x, weight, bias, dout, groups, lambda i: (i[1],), eps, fixed)
    return (out, new_mean, new_var), grads


def layer_norm_loops(x, weight, bias, dout, *, normalized_shape, eps):
    """(out, (grad_input, grad_weight, grad_bias))."""
    lead = x.ndim - len(normalized_shape)
    groups = _groups(x.shape, lambda i: i[:lead])
    return _run(x, weight, bias, dout, groups, lambda i: i[lead:], eps)


def group_norm_loops(x, weight, bias, dout, *, num_groups, eps):
    """(out, (grad_input, grad_weight, grad_bias))."""
    per_group = x.shape[1] // num_groups
    groups = _groups(x.shape, lambda i: (i[0], i[1] // per_group))
    return _run(x, weight, bias, dout, groups, lambda i: (i[1],), eps)


def instance_norm_loops(
    x, running_mean, running_var, weight, bias, dout, *, use_input_stats, momentum, eps
):
    """((out, new_running_mean, new_running_var), (grad_input, grad_weight, grad_bias))."""
    groups = _groups(x.shape, lambda i: i[:2])  # one group per (sample, channel)
    fixed = None
    if use_input_stats:
        sums_mean = [0.0] * x.shape[1]
        sums_var = [0.0] * x.shape[1]
        for members in groups:
            mean, var = _statistics(x, members)
            count = len(members)
            sums_mean[members[0][1]] += mean / x.shape[0]
            sums_var[members[0][1]] += var * count / (count - 1) / x.shape[0]
        new_mean = _running_loops(running_mean, sums_mean, momentum)
        new_var = _running_loops(running_var, sums_var, momentum)
    else:
        def fixed(members):
            channel = members[0][1]
            return float(running_mean[channel]), float(running_var[channel])
        new_mean, new_var = running_mean.copy(), running_var.copy()
    out, grads = _run(x, weight, bias, dout, groups, lambda i: (i[1],), eps, fixed)
    return (out, new_mean, new_var), grads
