"""Normalisation mistakes (batch_norm, layer_norm, group_norm, instance_norm).

Each mistake is recomputed in float64 numpy from the case's inputs (a standardisation over groups
of ``M`` values, its backward, the affine map) and compared with the user's result:

- the unbiased variance ``M / (M - 1)`` used to normalise (torch normalises with the biased one);
- the running variance updated with the biased variance (torch tracks the unbiased one), or
  momentum taken as the weight of the old value (``momentum * old + (1 - momentum) * batch``);
- eps outside the square root, ``(x - mean) / (sqrt(var) + eps)``;
- the simplified backward: the ``mean(g)`` term dropped, or the statistics treated as constants;
- the statistics taken over the wrong axes (per sample and channel for batch_norm, per channel for
  group_norm, interleaved groups, the last axis only for layer_norm).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .context import Check, Context
from .generic import float32_arithmetic

__all__ = ["NORM_CHECKS"]

Grouping = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]
"""(to groups: x -> (K, M) rows, one per normalised group; back: (K, M) -> the shape of x)."""


def _grouping(shape: tuple[int, ...], axes: tuple[int, ...]) -> Grouping:
    """Rows of the values that share statistics: every axis in ``axes`` goes into one row."""
    kept = [a for a in range(len(shape)) if a not in axes]
    order = kept + list(axes)
    inverse = np.argsort(order)
    moved = tuple(shape[a] for a in order)
    size = math.prod(shape[a] for a in axes)
    return (lambda x: np.transpose(x, order).reshape(-1, size),
            lambda rows: np.transpose(rows.reshape(moved), inverse))


def _group_norm_grouping(shape: tuple[int, ...], groups: int, interleaved: bool = False) -> Grouping:
    n, c = shape[:2]
    if not interleaved:
        return (lambda x: x.reshape(n * groups, -1), lambda rows: rows.reshape(shape))
    # channel k in group k % G instead of k // (C / G)
    split = (n, c // groups, groups, *shape[2:])
    def to_rows(x: np.ndarray) -> np.ndarray:
        return np.moveaxis(x.reshape(split), 2, 1).reshape(n * groups, -1)
    def back(rows: np.ndarray) -> np.ndarray:
        return np.moveaxis(rows.reshape(n, groups, c // groups, *shape[2:]), 1, 2).reshape(shape)
    return to_rows, back


def _true_grouping(context: Context) -> Grouping:
    shape, layer = context.tensors["input"].shape, context.layer
    if layer == "batch_norm":
        return _grouping(shape, (0, *range(2, len(shape))))
    if layer == "layer_norm":
        return _grouping(shape, tuple(range(len(shape) - len(context.hparams["normalized_shape"]), len(shape))))
    if layer == "group_norm":
        return _group_norm_grouping(shape, context.hparams["num_groups"])
    return _grouping(shape, tuple(range(2, len(shape))))


def _uses_batch_statistics(context: Context) -> bool:
    return bool(context.hparams.get("training", context.hparams.get("use_input_stats", True)))


def _param_shape(context: Context) -> tuple[int, ...]:
    shape = context.tensors["input"].shape
    if context.layer == "layer_norm":
        return tuple(context.hparams["normalized_shape"])
    return (1, shape[1]) + (1,) * (len(shape) - 2)


def _candidate(context: Context, grouping: Grouping, *, unbiased: bool = False, eps_outside: bool = False,
               backward: str = "full") -> dict[str, np.ndarray | None]:
    """output, grad_input, grad_weight, grad_bias of a standardisation variant, in float64."""
    x, eps = context.wide("input"), float(context.hparams["eps"])
    to_rows, back = grouping
    rows = to_rows(x)
    m = rows.shape[1]
    if _uses_batch_statistics(context):
        centred = rows - rows.mean(axis=1, keepdims=True)
        var = (centred ** 2).mean(axis=1, keepdims=True) * (m / (m - 1) if unbiased else 1.0)
    else:  # evaluation: the running statistics, constants for the backward
        channel = (1, -1) + (1,) * (x.ndim - 2)
        centred = to_rows(x - context.wide("running_mean").reshape(channel))
        var = to_rows(np.broadcast_to(context.wide("running_var").reshape(channel), x.shape))
        backward = "constants"
    if eps_outside:
        r = 1.0 / (np.sqrt(var) + eps)
        dr = -r ** 2 / (2.0 * np.sqrt(var))
    else:
        r = 1.0 / np.sqrt(var + eps)
        dr = -0.5 * r ** 3
    xhat = back(centred * r)
    param_shape = _param_shape(context)
    weight = None if context.tensors.get("weight") is None else context.wide("weight").reshape(param_shape)
    bias = None if context.tensors.get("bias") is None else context.wide("bias").reshape(param_shape)
    out = xhat * (1.0 if weight is None else weight) + (0.0 if bias is None else bias)
    dout = context.wide("dout")
    g = to_rows(dout * (1.0 if weight is None else weight))
    # The textbook formula with this variant's cached xhat and 1/std (what a backward written for the
    # correct forward computes when the forward has the mistake).
    xr = centred * r
    formula = r * (g - g.mean(axis=1, keepdims=True) - xr * (g * xr).mean(axis=1, keepdims=True))
    if backward == "constants":
        dx = g * r
    else:
        dvar = (2.0 / m) * (m / (m - 1) if unbiased else 1.0)
        dx = r * g + centred * dr * dvar * (g * centred).sum(axis=1, keepdims=True)
        if backward == "full":
            dx = dx - r * g.mean(axis=1, keepdims=True)
    reduce_axes = tuple(range(x.ndim - len(param_shape))) if context.layer == "layer_norm" else \
        (0, *range(2, x.ndim))
    squeeze = param_shape if context.layer == "layer_norm" else (x.shape[1],)
    return {"output": out, "grad_input": back(dx), "grad_input_formula": back(formula),
            "grad_weight": None if weight is None else (dout * xhat).sum(axis=reduce_axes).reshape(squeeze),
            "grad_bias": None if bias is None else dout.sum(axis=reduce_axes).reshape(squeeze)}


def _agrees(context: Context, tensor: str, candidate: dict[str, np.ndarray | None]) -> bool:
    value = candidate.get(tensor)
    return value is not None and context.explains(tensor, value)


def unbiased_variance(context: Context, tensor: str) -> str | None:
    """Normalised with the unbiased variance (divided by M - 1)."""
    if not _uses_batch_statistics(context):
        return None
    candidate = _candidate(context, _true_grouping(context), unbiased=True)
    if _agrees(context, tensor, candidate) or (tensor == "grad_input" and context.explains(
            tensor, candidate["grad_input_formula"])):
        return ("unbiased variance used to normalise: torch divides the squared deviations by the count M, "
                "not M - 1 (the unbiased variance only goes into the running variance)")
    return None


def eps_outside_sqrt(context: Context, tensor: str) -> str | None:
    candidate = _candidate(context, _true_grouping(context), eps_outside=True)
    if _agrees(context, tensor, candidate) or (tensor == "grad_input" and context.explains(
            tensor, candidate["grad_input_formula"])):
        return "eps outside the square root: torch divides by sqrt(var + eps), not sqrt(var) + eps"
    return None


def simplified_backward(context: Context, tensor: str) -> str | None:
    if not _uses_batch_statistics(context):
        return None
    grouping = _true_grouping(context)
    if _agrees(context, tensor, _candidate(context, grouping, backward="no_mean")):
        return ("mean term dropped in the backward: grad_input = inv_std * (g - mean(g) - xhat * mean(g * xhat)); "
                "the mean depends on every input, so mean(g) must be subtracted")
    if _agrees(context, tensor, _candidate(context, grouping, backward="constants")):
        return ("mean and variance treated as constants in the backward: grad_input = inv_std * (g - mean(g) - "
                "xhat * mean(g * xhat)), not inv_std * g")
    return None


def _wrong_groupings(context: Context) -> list[tuple[Grouping, str]]:
    shape, layer = context.tensors["input"].shape, context.layer
    ndim = len(shape)
    options: list[tuple[Grouping, str]] = []
    if layer == "batch_norm" and ndim > 2:
        options += [(_grouping(shape, (0,)), ("statistics per channel and position over the batch only; spatial "
                                              "batch_norm averages over N, H and W for each channel")),
                    (_grouping(shape, tuple(range(2, ndim))), ("statistics per sample and channel (instance norm); "
                                                               "batch_norm averages over the batch too"))]
    if layer == "batch_norm":
        options.append((_grouping(shape, tuple(range(1, ndim))), ("statistics per sample over the features "
                                                                   "(layer norm); batch_norm averages over the batch")))
    if layer == "layer_norm" and len(context.hparams["normalized_shape"]) > 1:
        options.append((_grouping(shape, (ndim - 1,)), ("statistics over the last axis only; layer_norm averages "
                                                       "over every axis of normalized_shape")))
    if layer == "layer_norm" and ndim > len(context.hparams["normalized_shape"]) + 0 and ndim >= 2:
        options.append((_grouping(shape, (0,)), ("statistics over the batch axis (batch norm); layer_norm averages "
                                                "over the last axes, per sample")))
    if layer == "group_norm":
        groups = context.hparams["num_groups"]
        if 1 < groups < shape[1]:
            options.append((_group_norm_grouping(shape, groups, interleaved=True),
                            "channels grouped by c % num_groups; torch's groups are consecutive channels"))
        if groups != shape[1] and ndim > 2:
            options.append((_grouping(shape, tuple(range(2, ndim))), ("statistics per channel (instance norm); "
                                                                     "group_norm averages over each group's channels")))
    return options


def wrong_axes(context: Context, tensor: str) -> str | None:
    if not _uses_batch_statistics(context):
        return None
    for grouping, message in _wrong_groupings(context):
        try:
            candidate = _candidate(context, grouping)
        except (ValueError, ZeroDivisionError, FloatingPointError):
            continue
        if _agrees(context, tensor, candidate):
            return f"normalised over the wrong axes: {message}"
    return None


def running_update(context: Context, tensor: str) -> str | None:
    """The running statistics updated with momentum as the old value's weight, or the biased variance."""
    if not _uses_batch_statistics(context) or context.tensors.get("running_mean") is None:
        return None
    momentum = float(context.hparams["momentum"])
    swapped = context.torch("momentum_swapped", hparams={"momentum": 1.0 - momentum})
    if context.explains(tensor, swapped[tensor]):
        return (f"momentum taken as the weight of the old value: torch updates running = (1 - momentum) * running "
                f"+ momentum * batch (momentum={momentum:g} weighs the batch statistic)")
    if tensor == "new_running_var":
        to_rows, _ = _true_grouping(context)
        x = context.wide("input")
        if context.layer == "instance_norm":
            rows = to_rows(x)
            biased = rows.var(axis=1).reshape(x.shape[:2]).mean(axis=0)
        else:
            rows = to_rows(x)
            biased = rows.var(axis=1)
        for weight, text in ((momentum, ""), (1.0 - momentum, " and momentum as the weight of the old value")):
            candidate = (1.0 - weight) * context.wide("running_var") + weight * biased
            if context.explains(tensor, candidate):
                return ("running variance updated with the biased variance" + text + ": torch tracks the unbiased "
                        "one, M / (M - 1) times the variance used to normalise")
    return None


def running_statistics_in_training(context: Context, tensor: str) -> str | None:
    """batch_norm in training normalised with the running mean or variance instead of the batch's."""
    if context.layer != "batch_norm" or not _uses_batch_statistics(context) or context.tensors.get("running_var") is None:
        return None
    x, eps = context.wide("input"), float(context.hparams["eps"])
    axes = (0, *range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    batch_mean, batch_var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    running_mean, running_var = context.wide("running_mean").reshape(shape), context.wide("running_var").reshape(shape)
    weight, bias = context.tensors.get("weight"), context.tensors.get("bias")
    for mean, var, which in ((batch_mean, running_var, "variance"), (running_mean, running_var, "mean and variance"),
                             (running_mean, batch_var, "mean")):
        out = (x - mean) / np.sqrt(var + eps)
        if weight is not None:
            out = out * context.wide("weight").reshape(shape)
        if bias is not None:
            out = out + context.wide("bias").reshape(shape)
        if context.explains(tensor, out):
            return (f"running {which} used in training: normalise with the batch's own statistics "
                    "(the running ones are updated in training and used in eval mode only)")
    return None


NORM_CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_input", "grad_weight", "grad_bias", "new_running_mean", "new_running_var"),
     float32_arithmetic),
    (("new_running_mean", "new_running_var"), running_update),
    (("output",), running_statistics_in_training),
    (("output", "grad_input", "grad_weight"), unbiased_variance),
    (("output", "grad_input", "grad_weight"), eps_outside_sqrt),
    (("grad_input",), simplified_backward),
    (("output", "grad_input", "grad_weight"), wrong_axes),
]
"""The normalisation checks in the order they are tried: (tensors each applies to, check)."""
