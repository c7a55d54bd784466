"""deeplearning.ai-style (Coursera "Convolution model step by step") functions mapped onto the contract.

The course writes channels last and keeps the bias as a 4-d array:

=====================================================================  ==========================
course functions                                                       contract layer
=====================================================================  ==========================
``conv_forward(A_prev, W, b, hparameters) -> (Z, cache)``              conv2d
  A_prev (m, n_H, n_W, n_C_prev), W (f, f, n_C_prev, n_C),
  b (1, 1, 1, n_C), hparameters {"stride", "pad"};
  ``conv_backward(dZ, cache) -> (dA_prev, dW, db)``, db (1, 1, 1, n_C)
``pool_forward(A_prev, hparameters, mode="max") -> (A, cache)``        max_pool2d
  hparameters {"f", "stride"}; ``pool_backward(dA, cache, mode)``
``pool_forward(..., mode="average")``                                  avg_pool2d (no padding)
=====================================================================  ==========================

The layouts (channels last, W as (f, f, C, F)) are converted at the boundary like any other
layout; this module maps the bias's shape, the hyperparameter dicts and the mode. Results pass
through unchanged apart from db's shape, so a mistake in the user's code is still reported.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from .contract import LayerFunctions, user_name
from .cs231n import conv_param_for
from .layouts import Layout

__all__ = ["COURSERA_LAYOUTS", "adapt_coursera", "written_for_the_course"]

# The course's layouts: channels last, W as (f, f, n_C_prev, n_C).
COURSERA_LAYOUTS = {"conv2d": [Layout("NHWC", "(kh, kw, C, F)")], "max_pool2d": [Layout("NHWC")],
                    "avg_pool2d": [Layout("NHWC")]}


def _torch_weight_shape(weight: np.ndarray) -> tuple[int, ...]:
    """(F, C, kh, kw) of a weight held as (kh, kw, C, F)."""
    kh, kw, channels, filters = weight.shape
    return filters, channels, kh, kw


def _in_course_terms(reason: str) -> str:
    """A CS231n conv_param reason said of the course's hparameters (the same two keys)."""
    return reason.replace("CS231n conv_param", "the course's hparameters").replace("CS231n conv", "the course's conv") \
        .replace("CS231n int pad", "int pad")


def _conv(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def conv2d_forward(x, weight, bias, *, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        hparams = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        hparameters = conv_param_for(hparams, _torch_weight_shape(weight))
        if isinstance(hparameters, str):
            raise ValueError(f"{user_name(origin)}: {_in_course_terms(hparameters)} ({hparams})")
        filters = weight.shape[-1]
        b = (np.zeros(filters, dtype=weight.dtype) if bias is None else bias).reshape(1, 1, 1, filters)
        out, cache = forward(x, weight, b, hparameters)
        return out, (cache, bias is not None, filters)

    def conv2d_backward(dout, cache):
        inner, has_bias, filters = cache
        grad_input, grad_weight, grad_bias = backward(dout, inner)
        if has_bias and isinstance(grad_bias, np.ndarray) and grad_bias.size == filters:
            grad_bias = grad_bias.reshape(filters)  # (1, 1, 1, n_C) -> (n_C,)
        return grad_input, grad_weight, grad_bias if has_bias else None

    def constraint(hparams: Mapping[str, Any]) -> str | None:
        shape = hparams.get("weight_shape")
        if shape is not None and shape[-2] != shape[-1]:
            return "the course's W is (f, f, n_C_prev, n_C): one f for both kernel axes"
        reason = conv_param_for(hparams)
        return _in_course_terms(reason) if isinstance(reason, str) else None

    return LayerFunctions("conv2d", conv2d_forward, conv2d_backward, accepted=frozenset({"stride", "padding"}),
                          constraint=constraint, origin=origin, adapter="coursera")


def _hparameters(kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool) -> dict | str:
    """The course's {"f", "stride"} for a pooling case, or why it has none (square, unpadded only)."""
    def square(value: Any) -> int | None:
        pair = value if isinstance(value, tuple) else (value, value)
        return int(pair[0]) if pair[0] == pair[1] else None

    f, s = square(kernel_size), square(kernel_size if stride is None else stride)
    if f is None or s is None:
        return "the course's hparameters have one f and one stride for both axes"
    if tuple(padding if isinstance(padding, tuple) else (padding, padding)) != (0, 0):
        return "the course's pooling has no padding"
    if tuple(dilation if isinstance(dilation, tuple) else (dilation, dilation)) != (1, 1) or ceil_mode:
        return "the course's pooling has no dilation or ceil_mode"
    return {"f": f, "stride": s}


def _pool(layer: str, forward: Callable, backward: Callable, mode: str, origin: str) -> LayerFunctions:
    def pool_forward(x, *, kernel_size, stride=None, padding=(0, 0), dilation=(1, 1), ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
        hparameters = _hparameters(kernel_size, stride, padding, dilation, ceil_mode)
        if isinstance(hparameters, str) or divisor_override is not None:
            raise ValueError(f"{user_name(origin)}: {hparameters if isinstance(hparameters, str) else 'no divisor'}")
        return forward(x, hparameters, mode=mode)

    def pool_backward(dout, cache):
        return backward(dout, cache, mode=mode)

    def constraint(hparams: Mapping[str, Any]) -> str | None:
        reason = _hparameters(hparams.get("kernel_size"), hparams.get("stride"), hparams.get("padding", (0, 0)),
                              hparams.get("dilation", (1, 1)), bool(hparams.get("ceil_mode", False)))
        if isinstance(reason, str):
            return reason
        return "the course's pooling has no divisor_override" if hparams.get("divisor_override") is not None else None

    accepted = {"kernel_size", "stride", "padding", "dilation", "ceil_mode"}
    if layer == "avg_pool2d":
        accepted |= {"count_include_pad", "divisor_override"}  # no padding: count_include_pad changes nothing
    return LayerFunctions(layer, pool_forward, pool_backward, accepted=frozenset(accepted), constraint=constraint,
                          origin=origin, adapter="coursera")


def adapt_coursera(module: ModuleType) -> dict[str, LayerFunctions]:
    """Contract LayerFunctions for the course's functions found in ``module`` (by their names)."""
    adapted: dict[str, LayerFunctions] = {}
    conv_forward, conv_backward = getattr(module, "conv_forward", None), getattr(module, "conv_backward", None)
    if callable(conv_forward) and callable(conv_backward):
        adapted["conv2d"] = _conv(conv_forward, conv_backward, "coursera: conv_forward")
    pool_forward, pool_backward = getattr(module, "pool_forward", None), getattr(module, "pool_backward", None)
    if callable(pool_forward) and callable(pool_backward):
        adapted["max_pool2d"] = _pool("max_pool2d", pool_forward, pool_backward, "max", "coursera: pool_forward")
        adapted["avg_pool2d"] = _pool("avg_pool2d", pool_forward, pool_backward, "average", "coursera: pool_forward")
    return adapted


def written_for_the_course(module: ModuleType, course: LayerFunctions) -> bool:
    """Whether the course's function takes the course's argument names (``A_prev``, ``hparameters``)."""
    try:
        names = set(inspect.signature(getattr(module, user_name(course.origin))).parameters)
    except (AttributeError, TypeError, ValueError):
        return False
    return bool(names & {"A_prev", "hparameters"})
