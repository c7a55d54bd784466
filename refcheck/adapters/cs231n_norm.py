"""CS231n-style normalisation, dropout and word-embedding functions mapped onto the contract.

=====================================================================  ==============================
CS231n functions                                                       contract layer
=====================================================================  ==============================
``batchnorm_forward(x, gamma, beta, bn_param)`` (x of shape (N, D))     batch_norm, 2-D inputs
``spatial_batchnorm_forward(x, gamma, beta, bn_param)`` (N, C, H, W)    batch_norm, 4-D inputs
``layernorm_forward(x, gamma, beta, ln_param)`` (N, D)                  layer_norm, normalized_shape (D,)
``spatial_groupnorm_forward(x, gamma, beta, G, gn_param)``              group_norm, 4-D inputs
``dropout_forward(x, dropout_param)``                                   dropout
``word_embedding_forward(x, W)``                                        embedding (no padding_idx)
=====================================================================  ==============================

each with its ``*_backward(dout, cache)``. Conventions mapped at the boundary:

- ``bn_param``: ``mode`` is ``'train'`` / ``'test'`` for torch's ``training``; CS231n's ``momentum``
  is the weight of the OLD value (``running = momentum * running + (1 - momentum) * batch``), so
  torch's momentum ``m`` is passed as ``1 - m``. The running statistics are read back from
  ``bn_param`` after the call.
- Running variance: CS231n updates it with the BIASED batch variance, torch with the unbiased one
  (``M / (M - 1)`` times it, ``M`` values per channel). The two updates differ by exactly
  ``m * var / (M - 1)``; the adapter adds that term (``var`` the biased per-channel variance of
  the input) to the user's running variance so that a correct CS231n update compares equal to
  torch's, and any other error in the user's update still shows unchanged. Everything else
  (output, gradients, running mean) is compared as returned.
- ``spatial_groupnorm``: gamma and beta are (1, C, 1, 1) arrays in CS231n; the adapter reshapes
  them (and their gradients back) between (C,) and (1, C, 1, 1).
- Dropout: CS231n's ``p`` is the KEEP probability; torch's is the drop probability, passed as
  ``1 - p``. The case's keep mask is imposed by answering the user's ``np.random.rand`` (or
  ``random_sample``/``random``/``uniform``) call during forward with values below the keep
  probability exactly where the mask keeps; the mask the user's code actually used is then
  recovered from its cache (an array of the input's shape) and, if it is not the case's mask (a
  generator the adapter cannot steer), the case is skipped as unsupported. Keep probability 0
  (torch's ``p = 1``) divides by zero in CS231n's ``mask / p``: skipped.

Missing gamma/beta (cases without affine parameters) are passed as ones/zeros and their gradients
returned as None.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from ..specs import Unsupported
from .contract import LayerFunctions, user_name

__all__ = ["FORMS_BY_LAYER", "adapt_cs231n_norm"]


def _ones_zeros(weight, bias, channels: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    gamma = np.ones(channels, dtype) if weight is None else weight
    beta = np.zeros(channels, dtype) if bias is None else bias
    return gamma, beta


def _affine_grads(grads, has_weight: bool, has_bias: bool, channels: int | None = None):
    dx, dgamma, dbeta = grads
    if channels is not None:  # (1, C, 1, 1) -> (C,)
        dgamma = dgamma.reshape(channels) if getattr(dgamma, "size", None) == channels else dgamma
        dbeta = dbeta.reshape(channels) if getattr(dbeta, "size", None) == channels else dbeta
    return dx, dgamma if has_weight else None, dbeta if has_bias else None


def _batch_norm(plain: tuple[Callable, Callable] | None, spatial: tuple[Callable, Callable] | None,
                origin: str) -> LayerFunctions:
    def batch_norm_forward(x, running_mean, running_var, weight, bias, *, training=True, momentum=0.1, eps=1e-5):
        functions = {2: plain, 4: spatial}.get(x.ndim)
        if functions is None:
            raise Unsupported(f"{user_name(origin)} has no CS231n batchnorm for {x.ndim}-d inputs "
                              "(batchnorm_forward takes (N, D), spatial_batchnorm_forward (N, C, H, W))")
        channels = x.shape[1]
        bn_param: dict[str, Any] = {"mode": "train" if training else "test", "eps": eps, "momentum": 1.0 - momentum}
        if running_mean is not None:
            bn_param.update(running_mean=running_mean.copy(), running_var=running_var.copy())
        gamma, beta = _ones_zeros(weight, bias, channels, x.dtype)
        out, cache = functions[0](x, gamma, beta, bn_param)
        new_mean = new_var = None
        if running_mean is not None:
            new_mean, new_var = bn_param.get("running_mean"), bn_param.get("running_var")
            if training and isinstance(new_var, np.ndarray):
                axes = (0, *range(2, x.ndim))
                count = x.size // channels
                biased = np.var(x.astype(np.float64), axis=axes)
                new_var = (new_var + momentum * biased / (count - 1)).astype(new_var.dtype)
        return (out, new_mean, new_var), (functions[1], cache, weight is not None, bias is not None, training)

    def batch_norm_backward(dout, cache):
        backward, inner, has_weight, has_bias, training = cache
        if inner is None and not training:
            # CS231n's test mode keeps no cache: its backward is for training only.
            raise Unsupported(f"{user_name(origin)}'s test mode returns no cache, so its backward cannot run")
        return _affine_grads(backward(dout, inner), has_weight, has_bias)

    def constraint(hparams: Mapping[str, Any]) -> str | None:
        # Known before any case runs, so the sweep's cases are drawn where the code has a batchnorm
        # (pairwise coverage over those, not over cases skipped at run time).
        shape = hparams.get("input_shape")
        if shape is not None and {2: plain, 4: spatial}.get(len(shape)) is None:
            return (f"{user_name(origin)} has no CS231n batchnorm for {len(shape)}-d inputs "
                    "(batchnorm_forward takes (N, D), spatial_batchnorm_forward (N, C, H, W))")
        return None

    return LayerFunctions("batch_norm", batch_norm_forward, batch_norm_backward,
                          accepted=frozenset({"training", "momentum", "eps"}), origin=origin, constraint=constraint)


def _layer_norm(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def layer_norm_forward(x, weight, bias, *, normalized_shape, eps=1e-5):
        if x.ndim != 2 or tuple(normalized_shape) != (x.shape[1],):
            raise Unsupported(f"{user_name(origin)} normalises (N, D) inputs over D; this case normalises {x.shape} "
                              f"over {tuple(normalized_shape)}")
        gamma, beta = _ones_zeros(weight, bias, x.shape[1], x.dtype)
        out, cache = forward(x, gamma, beta, {"eps": eps})
        return out, (cache, weight is not None, bias is not None)

    def layer_norm_backward(dout, cache):
        inner, has_weight, has_bias = cache
        return _affine_grads(backward(dout, inner), has_weight, has_bias)

    return LayerFunctions("layer_norm", layer_norm_forward, layer_norm_backward,
                          accepted=frozenset({"normalized_shape", "eps"}), origin=origin)


def _group_norm(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def group_norm_forward(x, weight, bias, *, num_groups, eps=1e-5):
        if x.ndim != 4:
            raise Unsupported(f"{user_name(origin)} takes (N, C, H, W) inputs; this case's input is {x.ndim}-d")
        channels = x.shape[1]
        gamma, beta = _ones_zeros(weight, bias, channels, x.dtype)
        out, cache = forward(x, gamma.reshape(1, channels, 1, 1), beta.reshape(1, channels, 1, 1), num_groups,
                             {"eps": eps})
        return out, (cache, weight is not None, bias is not None, channels)

    def group_norm_backward(dout, cache):
        inner, has_weight, has_bias, channels = cache
        return _affine_grads(backward(dout, inner), has_weight, has_bias, channels)

    return LayerFunctions("group_norm", group_norm_forward, group_norm_backward,
                          accepted=frozenset({"num_groups", "eps"}), origin=origin)


_RANDOM_NAMES = ("rand", "random_sample", "random", "uniform")


def _arrays_of_shape(value: Any, shape: tuple[int, ...]) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value] if value.shape == shape else []
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [found for item in value for found in _arrays_of_shape(item, shape)]
    return []


def _dropout(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def dropout_forward(x, mask, *, p=0.5, training=True):
        keep = 1.0 - p
        mask = np.asarray(mask, dtype=bool)
        # Uniform draws below the keep probability exactly where the case's mask keeps.
        draws = np.where(mask, keep / 2.0, (1.0 + keep) / 2.0)
        saved = {name: getattr(np.random, name) for name in _RANDOM_NAMES}

        def fake(*args, **kwargs):
            return draws.copy()

        try:
            for name in _RANDOM_NAMES:
                setattr(np.random, name, fake)
            out, cache = forward(x, {"p": keep, "mode": "train" if training else "test", "seed": 0})
        finally:
            for name, function in saved.items():
                setattr(np.random, name, function)
        if training and p > 0:
            used = [a for a in _arrays_of_shape(cache, x.shape) if a is not x and not np.shares_memory(a, x)]
            if not used or not any(np.array_equal(a != 0, mask) for a in used):
                raise Unsupported(f"{user_name(origin)}: the case's keep mask could not be imposed (its cache holds no mask "
                                  "equal to it; draw the mask with np.random.rand(*x.shape) < p)")
        return out, cache

    def constraint(hparams: Mapping[str, Any]) -> str | None:
        if hparams.get("training", True) and hparams.get("p", 0.5) == 1.0:
            return "CS231n dropout with keep probability 0 divides by zero (mask / p)"
        return None

    return LayerFunctions("dropout", dropout_forward, backward, accepted=frozenset({"p", "training"}),
                          constraint=constraint, origin=origin)


def _embedding(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def embedding_forward(input, weight):
        return forward(input, weight)

    return LayerFunctions("embedding", embedding_forward, backward, accepted=frozenset(), origin=origin)


def _one_batch_norm(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    """One batchnorm pair named by a mapping: the spatial (N, C, H, W) one when its name says so
    ("spatial", "2d", "4d"), else the (N, D) one."""
    pair = (forward, backward)
    spatial = any(word in user_name(origin).lower() for word in ("spatial", "2d", "4d"))
    return _batch_norm(None, pair, origin) if spatial else _batch_norm(pair, None, origin)


# The adapters by contract layer, for functions a mapping names under names of their own: the
# number of positional arguments the user's forward takes, and (forward, backward, origin) ->
# LayerFunctions.
FORMS_BY_LAYER: dict[str, tuple[int, Callable[[Callable, Callable, str], LayerFunctions]]] = {
    "batch_norm": (4, _one_batch_norm), "layer_norm": (4, _layer_norm), "group_norm": (5, _group_norm),
    "dropout": (2, _dropout), "embedding": (2, _embedding),
}


def _pair(module: ModuleType, forward: str, backward: str) -> tuple[Callable, Callable] | None:
    f, b = getattr(module, forward, None), getattr(module, backward, None)
    return (f, b) if callable(f) and callable(b) else None


def adapt_cs231n_norm(module: ModuleType) -> dict[str, LayerFunctions]:
    """Contract-style LayerFunctions for the CS231n functions of the table above found in ``module``."""
    adapted: dict[str, LayerFunctions] = {}
    plain = _pair(module, "batchnorm_forward", "batchnorm_backward")
    spatial = _pair(module, "spatial_batchnorm_forward", "spatial_batchnorm_backward")
    if plain or spatial:
        names = [n for n, found in (("batchnorm_forward", plain), ("spatial_batchnorm_forward", spatial)) if found]
        adapted["batch_norm"] = _batch_norm(plain, spatial, "cs231n: " + ", ".join(names))
    for layer, stem, build in (("layer_norm", "layernorm", _layer_norm),
                               ("group_norm", "spatial_groupnorm", _group_norm),
                               ("dropout", "dropout", _dropout),
                               ("embedding", "word_embedding", _embedding)):
        pair = _pair(module, f"{stem}_forward", f"{stem}_backward")
        if pair:
            adapted[layer] = build(*pair, f"cs231n: {stem}_forward")
    return adapted
