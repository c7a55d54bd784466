"""More element-wise activations in numpy, forward and backward.

Layers: ``gelu``, ``elu``, ``selu``, ``softplus``, ``silu``, ``hardtanh`` and ``prelu``, each
as a pure pair ``<layer>_forward(...) -> (out, cache)`` / ``<layer>_backward(dout, cache) ->
grads`` where ``grads`` is ``(grad_input,)``, or ``(grad_input, grad_weight)`` for ``prelu``.
Every output has the shape and dtype of ``x``.

torch's conventions at the kinks, reproduced here:

- ``elu``/``selu``: the negative branch holds for ``x <= 0``, so the gradient at 0 is
  ``alpha * scale`` (the left derivative), not ``scale``.
- ``softplus``: linear (``out = x``, gradient 1) only where ``beta * x > threshold``; at
  ``beta * x == threshold`` it is still the smooth formula.
- ``hardtanh``: the gradient passes only where ``min_val < x < max_val`` (0 at both bounds);
  NaN passes the gradient through, as the comparisons with it are false.
- ``prelu``: ``x > 0`` takes the identity, so at 0 the input gradient is ``weight * dout``.

The exact ``gelu`` needs the error function, which numpy lacks: :func:`erf` and :func:`erfc`
(in :mod:`refcheck.layers.special_functions`, re-exported here) are vectorised and accurate to
float64 precision (relative error below 1e-14).
"""
from __future__ import annotations

import math

import numpy as np

from refcheck.layers.activations import sigmoid_forward
from refcheck.layers.special_functions import erf, erfc

__all__ = [
    "elu_backward",
    "elu_forward",
    "erf",
    "erfc",
    "gelu_backward",
    "gelu_forward",
    "hardtanh_backward",
    "hardtanh_forward",
    "prelu_backward",
    "prelu_forward",
    "selu_backward",
    "selu_forward",
    "silu_backward",
    "silu_forward",
    "softplus_backward",
    "softplus_forward",
]

# torch's SELU constants (Klambauer et al. 2017), as float64.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_GELU_APPROXIMATIONS = ("none", "tanh")
# Coefficient of the cubic term in the tanh approximation of gelu.
_GELU_KAPPA = 0.044715



def _upstream(dout: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The upstream gradient as an array of the forward input's dtype (no copy if it is)."""
    dout = np.asarray(dout, dtype=like.dtype)
    if dout.shape != like.shape:
        raise ValueError(f"dout has shape {dout.shape}, expected {like.shape}")
    return dout


# ------------------------------------------------------------------------------------- gelu


def gelu_forward(x: np.ndarray, *, approximate: str = "none") -> tuple[np.ndarray, tuple]:
    """Gaussian error linear unit ``x * Phi(x)``.

    ``approximate='none'``: ``Phi(x) = erfc(-x / sqrt(2)) / 2`` (the normal CDF; the erfc form
    stays accurate for very negative ``x``, where ``1 + erf`` cancels).
    ``approximate='tanh'``: ``0.5 x (1 + tanh(u))``, ``u = sqrt(2/pi) (x + 0.044715 x**3)``,
    evaluated as ``x * sigmoid(2u)`` (equal, and free of cancellation where ``tanh(u) ~ -1``).

    Parameters
    ----------
    x : ndarray of any shape
    approximate : {'none', 'tanh'}
        torch default 'none'.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple
    """
    if approximate not in _GELU_APPROXIMATIONS:
        raise ValueError(f"approximate must be one of {_GELU_APPROXIMATIONS}, got {approximate!r}")
    x = np.asarray(x)
    half = x.dtype.type(0.5)
    if approximate == "none":
        cdf = half * erfc(-x * x.dtype.type(math.sqrt(0.5)))
        return x * cdf, (x, approximate, cdf)
    beta = x.dtype.type(math.sqrt(2.0 / math.pi))
    two_inner = x.dtype.type(2) * beta * (x + x.dtype.type(_GELU_KAPPA) * x * x * x)
    # 1 + tanh(u) = 2 sigmoid(2u) and 1 - tanh(u) = 2 sigmoid(-2u): no cancellation where
    # tanh saturates at -1 (float32 loses every digit of 1 + tanh there).
    sigmoid_pos, _ = sigmoid_forward(two_inner)
    sigmoid_neg, _ = sigmoid_forward(-two_inner)
    return x * sigmoid_pos, (x, approximate, (sigmoid_pos, sigmoid_neg))


def gelu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`gelu_forward`.

    Exact: ``dout * (Phi(x) + x * phi(x))`` with ``phi(x) = exp(-x**2/2) / sqrt(2 pi)``.
    tanh: ``dout * (0.5 (1 + t) + 0.5 x (1 - t**2) sqrt(2/pi) (1 + 3 * 0.044715 x**2))``
    with ``t = tanh(u)`` of the forward, evaluated as ``0.5 (1 + t) = sigmoid(2u)`` and
    ``1 - t**2 = 4 sigmoid(2u) sigmoid(-2u)``.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``x``
    """
    x, approximate, saved = cache
    dout = _upstream(dout, x)
    one, half = x.dtype.type(1), x.dtype.type(0.5)
    if approximate == "none":
        cdf = saved
        # exp underflows harmlessly to 0 for |x| > ~38 (float64), where x * pdf is 0 anyway.
        with np.errstate(under="ignore"):
            pdf = np.exp(-half * x * x) * x.dtype.type(1.0 / math.sqrt(2.0 * math.pi))
        return (dout * (cdf + x * pdf),)
    sigmoid_pos, sigmoid_neg = saved
    beta = x.dtype.type(math.sqrt(2.0 / math.pi))
    kappa = x.dtype.type(_GELU_KAPPA)
    inner_derivative = beta * (one + x.dtype.type(3) * kappa * x * x)
    # 0.5 (1 + t) = s(2u) and 0.5 x (1 - t**2) = 2 x s(2u) s(-2u).
    derivative = sigmoid_pos + x.dtype.type(2) * x * sigmoid_pos * sigmoid_neg * inner_derivative
    return (dout * derivative,)


# ------------------------------------------------------------------------------ elu and selu


def _elu(x: np.ndarray, alpha: float, scale: float) -> tuple[np.ndarray, tuple]:
    """``scale * x`` for ``x > 0``, else ``scale * alpha * (exp(x) - 1)``."""
    dtype = x.dtype.type
    negative_part = np.expm1(np.minimum(x, dtype(0)))  # min() keeps exp from overflowing
    out = np.where(x > 0, x * dtype(scale), negative_part * dtype(alpha * scale))
    return out, (x, alpha, scale)


def _elu_gradient(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    x, alpha, scale = cache
    dout = _upstream(dout, x)
    dtype = x.dtype.type
    # x <= 0 (including 0) takes the exponential branch: gradient alpha * scale at 0, as torch.
    negative = dout * dtype(alpha * scale) * np.exp(np.minimum(x, dtype(0)))
    return (np.where(x > 0, dout * dtype(scale), negative),)


def elu_forward(x: np.ndarray, *, alpha: float = 1.0) -> tuple[np.ndarray, tuple]:
    """Exponential linear unit: ``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    Parameters
    ----------
    x : ndarray of any shape
    alpha : float
        torch default 1.0; any real value.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple
    """
    x = np.asarray(x)
    return _elu(x, alpha, 1.0)


def elu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`elu_forward`: ``dout`` for ``x > 0``, else ``alpha * exp(x) * dout``.

    At ``x = 0`` the gradient is ``alpha * dout`` (torch's choice).

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``x``
    """
    return _elu_gradient(dout, cache)


def selu_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Scaled ELU: ``scale * elu(x, alpha)`` with torch's fixed ``alpha`` and ``scale``.

    ``alpha = 1.6732632423543772``, ``scale = 1.0507009873554805``.

    Parameters
    ----------
    x : ndarray of any shape

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple
    """
    x = np.asarray(x)
    return _elu(x, SELU_ALPHA, SELU_SCALE)


def selu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`selu_forward`: ``scale * dout`` for ``x > 0``, else
    ``scale * alpha * exp(x) * dout`` (also at ``x = 0``).

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``x``
    """
    return _elu_gradient(dout, cache)


# ---------------------------------------------------------------------------------- softplus


def softplus_forward(
    x: np.ndarray, *, beta: float = 1.0, threshold: float = 20.0
) -> tuple[np.ndarray, tuple]:
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold``.

    The smooth branch is evaluated as ``(max(bx, 0) + log1p(exp(-|bx|))) / beta``, which equals
    torch's ``log1p(exp(bx)) / beta`` but cannot overflow for a large threshold.

    Parameters
    ----------
    x : ndarray of any shape
    beta : float
        torch default 1.0; non-zero.
    threshold : float
        torch default 20.0. The switch is strict: at ``beta * x == threshold`` the smooth
        formula applies.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple
    """
    x = np.asarray(x)
    dtype = x.dtype.type
    scaled = x * dtype(beta)
    smooth = (np.maximum(scaled, dtype(0)) + np.log1p(np.exp(-np.abs(scaled)))) / dtype(beta)
    linear = scaled > dtype(threshold)
    return np.where(linear, x, smooth), (scaled, linear)


def softplus_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`softplus_forward`: ``sigmoid(beta * x) * dout``, ``dout`` where linear.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``x``
    """
    scaled, linear = cache
    dout = _upstream(dout, scaled)
    sigmoid, _ = sigmoid_forward(scaled)
    return (np.where(linear, dout, dout * sigmoid),)


# -------------------------------------------------------------------------------------- silu


def silu_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Sigmoid linear unit (swish) ``x * sigmoid(x)``.

    Parameters
    ----------
    x : ndarray of any shape

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple
        The input and its sigmoid.
    """
    x = np.asarray(x)
    sigmoid, _ = sigmoid_forward(x)
    return x * sigmoid, (x, sigmoid)


def silu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`silu_forward`: ``dout * s * (1 + x * (1 - s))``, ``s = sigmoid(x)``.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``x``
    """
    x, sigmoid = cache
    dout = _upstream(dout, x)
    one = x.dtype.type(1)
    return (dout * sigmoid * (one + x * (one - sigmoid)),)


# ---------------------------------------------------------------------------------- hardtanh


def hardtanh_forward(
    x: np.ndarray, *, min_val: float = -1.0, max_val: float = 1.0
) -> tuple[np.ndarray, tuple]:
    """``x`` clamped to ``[min_val, max_val]``.

    Parameters
    ----------
    x : ndarray of any shape
    min_val, max_val : float
        torch defaults -1.0 and 1.0; ``min_val <= max_val`` (torch raises otherwise). Both are
        rounded to the input's dtype before comparing, as torch does.

    Returns
    -------
    out : ndarray, shape and dtype of ``x`` (NaN stays NaN)
    cache : tuple
    """
    if min_val > max_val:
        raise ValueError("hardtanh: min_val cannot be greater than max_val")
    x = np.asarray(x)
    low, high = x.dtype.type(min_val), x.dtype.type(max_val)
    return np.clip(x, low, high), (x, low, high)


def hardtanh_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`hardtanh_forward`: ``dout`` where ``min_val < x < max_val``, else 0.

    Strict on both sides (0 exactly at the bounds), as torch.

    Returns
    -------
    (grad_input,) : ndarray, shape and dtype of ``x``
    """
    x, low, high = cache
    dout = _upstream(dout, x)
    return (np.where((x <= low) | (x >= high), x.dtype.type(0), dout),)


# ------------------------------------------------------------------------------------- prelu


def _broadcast_weight(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The prelu weight shaped to broadcast against ``x`` along the channel axis 1."""
    channels = x.shape[1] if x.ndim >= 2 else 1
    if weight.size == 1:
        return weight.reshape(())
    if weight.size != channels:
        raise ValueError(
            f"prelu: weight has {weight.size} elements; expected 1 or the {channels} channels "
            f"of input {x.shape} (axis 1)"
        )
    return weight.reshape((1, channels) + (1,) * (x.ndim - 2))


def prelu_forward(x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Parametric ReLU: ``x`` where ``x > 0``, else ``weight[c] * x`` for channel ``c``.

    Parameters
    ----------
    x : ndarray of shape (N, C, *) or of 0 or 1 axes (then a single channel)
    weight : ndarray of 1 element or of C elements (shape (C,) in torch)
        The learnt slopes, shared by all channels when it has one element.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple
    """
    x = np.asarray(x)
    weight = np.asarray(weight, dtype=x.dtype)
    slope = _broadcast_weight(x, weight)
    return np.where(x > 0, x, slope * x), (x, weight, slope)


def prelu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of :func:`prelu_forward`.

    ``grad_input = dout`` where ``x > 0``, else ``weight[c] * dout`` (also at 0);
    ``grad_weight[c]`` is the sum of ``x * dout`` over the non-positive inputs of channel ``c``
    (over all inputs when the weight has one element).

    Returns
    -------
    grad_input : ndarray, shape and dtype of ``x``
    grad_weight : ndarray, shape and dtype of ``weight``
    """
    x, weight, slope = cache
    dout = _upstream(dout, x)
    positive = x > 0
    grad_input = np.where(positive, dout, slope * dout)
    contribution = np.where(positive, x.dtype.type(0), x * dout)
    if weight.size == 1:
        grad_weight = np.sum(contribution)
    else:
        grad_weight = np.sum(contribution, axis=tuple(a for a in range(x.ndim) if a != 1))
    return grad_input, np.asarray(grad_weight, dtype=x.dtype).reshape(weight.shape)
