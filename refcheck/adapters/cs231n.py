"""CS231n-style layer functions mapped onto the implementation contract.

The CS231n assignments write layers as ``<name>_forward(x, ..., param_dict) -> (out, cache)`` and
``<name>_backward(dout, cache) -> grads``, with one stride and one pad for both spatial axes and the
affine weight stored as (in_features, out_features). This module maps those layouts and names onto
the contract and nothing else: results pass through unchanged (no clipping, no dtype or shape casts),
so a mismatch in the user's code is still reported as a mismatch.

Recognised names (``*`` is any suffix; ``naive`` is preferred, then no suffix, then ``fast``):

=====================================================  ===================================
CS231n functions                                       contract layer
=====================================================  ===================================
``conv_forward_*(x, w, b, conv_param)``                conv2d
``max_pool_forward_*(x, pool_param)``                  max_pool2d
``affine_forward(x, w, b)``                            linear
``softmax_loss(x, y) -> (loss, dx)``                   cross_entropy (reduction='mean')
=====================================================  ===================================

``relu_forward(x)`` / ``relu_backward(dout, cache)`` and the sigmoid pair already have the
contract's names and calling convention, so they need no adapter: they are found as contract-style
functions.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import ModuleType
from typing import Any

import numpy as np

from ..specs import Unsupported
from .contract import LayerFunctions, Misfit, user_name
from .optional_tensors import BiasCache, zeros_for_missing_bias

__all__ = ["FORMS_BY_LAYER", "adapt_cs231n", "conv_param_for", "pool_param_for"]

# Suffix preference when a module has several variants: the learner's own naive version first
# (CS231n ships the fast ones ready-made), then an unsuffixed name.
_SUFFIX_PREFERENCE = ("naive", "", "fast")


def _square(value: Any) -> int | None:
    """The single int that ``value`` stands for on both axes, or None if the axes differ."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    pair = tuple(value)
    if len(pair) == 2 and pair[0] == pair[1]:
        return int(pair[0])
    return None


def _is_pair_of(value: Any, expected: int) -> bool:
    """Whether ``value`` (an int or an (h, w) pair) equals ``expected`` on both axes."""
    return _square(value) == expected


def conv_param_for(
    hparams: Mapping[str, Any], kernel_shape: tuple[int, ...] | None = None
) -> dict[str, int] | str:
    """The CS231n ``conv_param`` for contract conv2d hyperparameters, or why there is none.

    Parameters
    ----------
    hparams : mapping
        Contract hyperparameters: stride (sh, sw), padding (ph, pw) | 'same' | 'valid',
        dilation (dh, dw), groups int. Missing keys are taken at torch's defaults. A
        ``weight_shape`` entry (F, C, kh, kw), if present, stands in for ``kernel_shape``.
    kernel_shape : tuple of int, optional
        The weight's shape (F, C, kh, kw); needed only to express padding='same'.

    Returns
    -------
    dict or str
        ``{'stride': s, 'pad': p}`` when expressible, otherwise the reason it is not.
    """
    stride = _square(hparams.get("stride", (1, 1)))
    if stride is None:
        return "CS231n conv_param has one stride for both axes"
    if not _is_pair_of(hparams.get("dilation", (1, 1)), 1):
        return "CS231n conv has no dilation"
    if hparams.get("groups", 1) != 1:
        return "CS231n conv has no groups"
    padding = hparams.get("padding", (0, 0))
    if padding == "valid":
        return {"stride": stride, "pad": 0}
    if padding == "same":
        kernel_shape = kernel_shape if kernel_shape is not None else hparams.get("weight_shape")
        if kernel_shape is None:
            return "padding='same' needs the kernel size to become a CS231n int pad"
        kh, kw = kernel_shape[-2:]
        # torch pads 'same' asymmetrically (extra row/column at the end) for even kernels.
        if kh != kw or kh % 2 == 0:
            return "padding='same' with a non-square or even kernel is not one CS231n int pad"
        return {"stride": stride, "pad": (kh - 1) // 2}
    pad = _square(padding)
    if pad is None:
        return "CS231n conv_param has one pad for both axes"
    return {"stride": stride, "pad": pad}


def pool_param_for(hparams: Mapping[str, Any]) -> dict[str, int] | str:
    """The CS231n ``pool_param`` for contract max_pool2d hyperparameters, or why there is none.

    Parameters
    ----------
    hparams : mapping
        Contract hyperparameters: kernel_size (kh, kw), stride (sh, sw), padding, dilation,
        ceil_mode. Missing keys are taken at torch's defaults (stride = kernel_size).

    Returns
    -------
    dict or str
        ``{'pool_height': kh, 'pool_width': kw, 'stride': s}`` or the reason it is not expressible.
    """
    kernel = hparams["kernel_size"]
    kh, kw = (kernel, kernel) if isinstance(kernel, (int, np.integer)) else tuple(kernel)
    stride = _square(hparams.get("stride", (kh, kw)))
    if stride is None:
        return "CS231n pool_param has one stride for both axes"
    if not _is_pair_of(hparams.get("padding", (0, 0)), 0):
        return "CS231n pool_param has no padding"
    if not _is_pair_of(hparams.get("dilation", (1, 1)), 1):
        return "CS231n pool_param has no dilation"
    if hparams.get("ceil_mode", False):
        return "CS231n pool_param has no ceil_mode"
    return {"pool_height": int(kh), "pool_width": int(kw), "stride": stride}


def _reason_only(param_for: Callable[[Mapping[str, Any]], dict[str, int] | str]):
    """Turn a ``*_param_for`` function into a LayerFunctions constraint (reason or None)."""

    def constraint(hparams: Mapping[str, Any]) -> str | None:
        param = param_for(hparams)
        return param if isinstance(param, str) else None

    return constraint


def _transposed(array: Any) -> Any:
    """A 2-D array's transpose (a view); anything else unchanged, so a wrong shape shows."""
    return array.T if isinstance(array, np.ndarray) and array.ndim == 2 else array


def _conv(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def conv2d_forward(x, weight, bias, *, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        hparams = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        conv_param = conv_param_for(hparams, weight.shape)
        if isinstance(conv_param, str):
            raise ValueError(f"{user_name(origin)}: {conv_param} ({hparams})")
        out, cache = forward(x, weight, zeros_for_missing_bias(bias, weight), conv_param)
        return out, BiasCache(cache, bias is not None)

    def conv2d_backward(dout, cache: BiasCache):
        grad_input, grad_weight, grad_bias = backward(dout, cache.inner)
        return grad_input, grad_weight, grad_bias if cache.has_bias else None

    return LayerFunctions(
        "conv2d", conv2d_forward, conv2d_backward,
        accepted=frozenset({"stride", "padding"}),
        constraint=_reason_only(conv_param_for), origin=origin, adapter="cs231n",
    )


def _max_pool(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def max_pool2d_forward(x, *, kernel_size, stride=None, padding=(0, 0), dilation=(1, 1),
                           ceil_mode=False):
        hparams = {"kernel_size": kernel_size, "stride": kernel_size if stride is None else stride,
                   "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
        pool_param = pool_param_for(hparams)
        if isinstance(pool_param, str):
            raise ValueError(f"{user_name(origin)}: {pool_param} ({hparams})")
        return forward(x, pool_param)

    return LayerFunctions(
        "max_pool2d", max_pool2d_forward, backward,
        accepted=frozenset({"kernel_size", "stride"}),
        constraint=_reason_only(pool_param_for), origin=origin, adapter="cs231n",
    )


def _affine(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def linear_forward(x, weight, bias):
        if x.ndim != 2:
            # affine_forward flattens every axis after the first; torch's linear keeps leading axes.
            raise Unsupported(f"{user_name(origin)} flattens (N, d1, ...) inputs; this case has a "
                              f"{x.ndim}-d input that torch's linear treats as leading axes")
        # CS231n stores the weight as (in_features, out_features): pass the transposed view. The
        # bias has out_features values whichever layout the weight was found in (weight (in, out)
        # code gets it transposed back here).
        outputs = weight.size // max(1, int(np.prod(x.shape[1:])))
        out, cache = forward(x, weight.T, zeros_for_missing_bias(bias, weight, outputs))
        return out, BiasCache(cache, bias is not None)

    def linear_backward(dout, cache: BiasCache):
        grad_input, grad_weight, grad_bias = backward(dout, cache.inner)
        return grad_input, _transposed(grad_weight), grad_bias if cache.has_bias else None

    def constraint(hparams: Mapping[str, Any]) -> str | None:
        shape = hparams.get("input_shape")
        if shape is not None and len(shape) != 2:
            return (f"{user_name(origin)} flattens (N, d1, ...) inputs; this case has a {len(shape)}-d input "
                    "that torch's linear treats as leading axes")
        return None

    return LayerFunctions("linear", linear_forward, linear_backward, accepted=frozenset(),
                          origin=origin, adapter="cs231n", constraint=constraint)


def _softmax_loss(loss_and_grad: Callable, origin: str) -> LayerFunctions:
    def cross_entropy_forward(input, target, *, reduction="mean"):
        if reduction != "mean":
            raise ValueError(f"{user_name(origin)} is the mean loss only")
        if input.ndim != 2:
            raise Unsupported(f"{user_name(origin)} takes (N, C) scores; this case's input is {input.shape}")
        returned = loss_and_grad(input, target)
        if returned is None:  # an assignment stub: checked, its cases fail on the missing loss
            return None, None
        if not isinstance(returned, tuple) or len(returned) != 2:
            raise Misfit(f"{user_name(origin)} returns {type(returned).__name__}, not (loss, dx)")
        return returned

    def cross_entropy_backward(dout, grad_input):
        # softmax_loss returns d(loss)/d(input); the chain rule scales it by the upstream scalar.
        return grad_input * dout

    def constraint(hparams: Mapping[str, Any]) -> str | None:
        if hparams.get("reduction", "mean") != "mean":
            return f"{user_name(origin)} is the mean loss only"
        return None

    return LayerFunctions("cross_entropy", cross_entropy_forward, cross_entropy_backward,
                          accepted=frozenset({"reduction"}), constraint=constraint, origin=origin,
                          adapter="cs231n")


# The adapters by contract layer, for functions a mapping names under names of their own: the
# number of positional arguments the user's forward takes, and (forward, backward or None, origin)
# -> LayerFunctions. softmax_loss is its own backward.
FORMS_BY_LAYER: dict[str, tuple[int, Callable[[Callable, Callable | None, str], LayerFunctions]]] = {
    "conv2d": (4, _conv), "max_pool2d": (2, _max_pool), "linear": (3, _affine),
    "cross_entropy": (2, lambda forward, backward, origin: _softmax_loss(forward, origin)),
}


def _find_pair(module: ModuleType, stem: str) -> tuple[str, str, bool] | None:
    """The preferred ``<stem>_forward_<suffix>`` / ``<stem>_backward_<suffix>`` pair in module, and
    whether the backward exists (a forward alone is still checked: its gradients are errors naming
    the missing backward, instead of the layer silently counted as not implemented)."""
    pattern = re.compile(rf"{stem}_forward(?:_(\w+))?")
    suffixes = [
        match.group(1) or ""
        for name in dir(module)
        if (match := pattern.fullmatch(name)) and callable(getattr(module, name))
    ]

    def rank(suffix: str) -> tuple[int, str]:
        order = _SUFFIX_PREFERENCE.index(suffix) if suffix in _SUFFIX_PREFERENCE else 99
        return order, suffix

    names = [(f"{stem}_forward{tail}", f"{stem}_backward{tail}")
             for tail in (f"_{suffix}" if suffix else "" for suffix in sorted(suffixes, key=rank))]
    for forward, backward in names:
        if callable(getattr(module, backward, None)):
            return forward, backward, True
    return (*names[0], False) if names else None


def _absent_backward(*args: Any) -> Any:  # never called: the adapted backward is removed
    raise NotImplementedError


def adapt_cs231n(module: ModuleType) -> dict[str, LayerFunctions]:
    """Contract-style LayerFunctions for the CS231n-style functions found in ``module``.

    Parameters
    ----------
    module : module
        Any module; only the recognised function names (see the module docstring) are used.

    Returns
    -------
    dict of str to LayerFunctions
        Contract layer name -> adapted functions, with origin ``"cs231n: <forward name>"``.
    """
    builders = {"conv": _conv, "max_pool": _max_pool, "affine": _affine}
    adapted: dict[str, LayerFunctions] = {}
    for stem, build in builders.items():
        pair = _find_pair(module, stem)
        if pair is not None:
            forward_name, backward_name, has_backward = pair
            backward = getattr(module, backward_name) if has_backward else _absent_backward
            functions = build(getattr(module, forward_name), backward, f"cs231n: {forward_name}")
            if not has_backward:
                functions = replace(functions, backward=None, missing=backward_name)
            adapted[functions.layer] = functions
    softmax_loss = getattr(module, "softmax_loss", None)
    if callable(softmax_loss):
        adapted["cross_entropy"] = _softmax_loss(softmax_loss, "cs231n: softmax_loss")
    return adapted
