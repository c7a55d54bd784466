"""Element-wise and normalising activations in numpy, forward and backward.

Layers: ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``softmax`` and ``log_softmax``,
each as a pure pair ``<layer>_forward(...) -> (out, cache)`` /
``<layer>_backward(dout, cache) -> grad_x``. Every output has the shape and dtype of ``x``
and is computed at that precision. torch's conventions hold at the special points:
``relu'(0) = 0``, ``leaky_relu'(0) = negative_slope``, and a NaN input passes the upstream
gradient through relu (torch tests ``out <= 0``, which is false for NaN).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "leaky_relu_backward",
    "leaky_relu_forward",
    "log_softmax_backward",
    "log_softmax_forward",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_backward",
    "softmax_forward",
    "tanh_backward",
    "tanh_forward",
]


_UNSIGNED = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _choose(condition: np.ndarray, if_true: np.ndarray, if_false: np.ndarray) -> np.ndarray:
    """``np.where(condition, if_true, if_false)``, bit for bit, for two float arrays of one shape and dtype.

    np.where branches on every element, and on random signs nearly every branch is mispredicted
    (about 10x a multiply here). Instead each result is picked with bit masks: with ``m`` all ones
    where ``condition`` holds, ``false_bits ^ ((true_bits ^ false_bits) & m)``. Other operands go to
    np.where.
    """
    dtype = if_true.dtype
    if (np.ndim(condition) == 0 or np.size(condition) < 1024  # small: where's branches cost little
            or dtype.kind != "f" or if_false.dtype != dtype or dtype.itemsize not in _UNSIGNED
            or not condition.shape == if_true.shape == if_false.shape):
        return np.where(condition, if_true, if_false)
    unsigned = _UNSIGNED[dtype.itemsize]
    mask = condition.astype(unsigned)
    np.negative(mask, out=mask)  # 1 -> all ones
    false_bits = if_false.view(unsigned)
    picked = np.bitwise_xor(if_true.view(unsigned), false_bits)
    np.bitwise_and(picked, mask, out=picked)
    np.bitwise_xor(picked, false_bits, out=picked)
    return picked.view(dtype)


def _upstream(dout: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The upstream gradient as an array of the forward input's dtype (no copy if it is)."""
    return np.asarray(dout, dtype=like.dtype)


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max(x, 0)`` element-wise.

    Parameters
    ----------
    x : ndarray of any shape

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : ndarray
        The output; the backward needs only its sign, as in torch.
    """
    x = np.asarray(x)
    out = np.maximum(x, np.zeros((), dtype=x.dtype))
    return out, out


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Gradient of :func:`relu_forward`: ``dout`` where the output is positive, else 0.

    At ``x = 0`` the gradient is 0 (torch's subgradient choice).
    """
    out = cache
    dout = _upstream(dout, out)
    return _choose(out <= 0, np.zeros_like(dout), dout)


def leaky_relu_forward(
    x: np.ndarray, *, negative_slope: float
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """``x`` where ``x > 0``, else ``negative_slope * x``.

    Parameters
    ----------
    x : ndarray of any shape
    negative_slope : float
        Slope for non-positive inputs (torch default 0.01).

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple
        The input and the slope at the input's precision.
    """
    x = np.asarray(x)
    # The slope is rounded to the input's dtype first, as torch does, so float32 stays float32.
    slope = np.asarray(negative_slope, dtype=x.dtype)
    out = _choose(x > 0, x, x * slope)
    return out, (x, slope)


def leaky_relu_backward(dout: np.ndarray, cache: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Gradient of :func:`leaky_relu_forward`: ``dout`` where ``x > 0``, else ``slope * dout``.

    At ``x = 0`` the gradient is ``negative_slope * dout`` (torch's convention).
    """
    x, slope = cache
    dout = _upstream(dout, x)
    return _choose(x > 0, dout, dout * slope)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logistic function ``1 / (1 + exp(-x))``, without overflow for large ``|x|``.

    Parameters
    ----------
    x : ndarray of any shape

    Returns
    -------
    out : ndarray, shape and dtype of ``x``, values in [0, 1]
    cache : tuple
        The output and ``1 - out`` computed as ``sigmoid(-x)`` (accurate where ``out`` is near 1),
        whose product is the derivative.
    """
    x = np.asarray(x)
    # exp(-|x|) never overflows; for x < 0 use the algebraically equal e^x / (1 + e^x).
    exp_neg_abs = np.exp(-np.abs(x))
    one = np.ones((), dtype=x.dtype)
    large, small = one / (one + exp_neg_abs), exp_neg_abs / (one + exp_neg_abs)
    non_negative = x >= 0
    out = _choose(non_negative, large, small)
    return out, (out, _choose(non_negative, small, large))


def sigmoid_backward(dout: np.ndarray, cache: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Gradient of :func:`sigmoid_forward`: ``dout * sigmoid(x) * sigmoid(-x)``.

    ``sigmoid(-x)`` rather than ``1 - out``: where ``out`` is near 1 the subtraction cancels.
    """
    out, complement = cache
    dout = _upstream(dout, out)
    return dout * out * complement


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hyperbolic tangent element-wise.

    Parameters
    ----------
    x : ndarray of any shape

    Returns
    -------
    out : ndarray, shape and dtype of ``x``, values in [-1, 1]
    cache : ndarray
        The input, from which the derivative ``1 / cosh(x)**2`` follows.
    """
    x = np.asarray(x)
    return np.tanh(x), x


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Gradient of :func:`tanh_forward`: ``dout / cosh(x)**2``.

    Equal to ``dout * (1 - out**2)``, which cancels where ``|out|`` is near 1 (thousands of
    epsilons at ``|x|`` near 5); ``cosh`` overflowing to inf gives the right limit, 0.
    """
    x = cache
    dout = _upstream(dout, x)
    with np.errstate(over="ignore"):
        sech = np.ones((), dtype=x.dtype) / np.cosh(x)
    return dout * sech * sech


def softmax_forward(x: np.ndarray, *, dim: int) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
    """``exp(x) / sum(exp(x))`` along axis ``dim``.

    Parameters
    ----------
    x : ndarray of at least one axis
    dim : int
        Axis to normalise over; negative values count from the end.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``; sums to 1 along ``dim``
    cache : tuple
        The output and the axis.
    """
    x = np.asarray(x)
    if x.size == 0:  # an empty batch: nothing to normalise (and np.max has no identity)
        out = x.copy()
        return out, (out, dim)
    # Subtracting the maximum keeps exp() in (0, 1] so large logits cannot overflow.
    shifted = x - np.max(x, axis=dim, keepdims=True)
    exp_shifted = np.exp(shifted)
    out = exp_shifted / np.sum(exp_shifted, axis=dim, keepdims=True)
    return out, (out, dim)


def softmax_backward(dout: np.ndarray, cache: tuple[np.ndarray, int]) -> np.ndarray:
    """Gradient of :func:`softmax_forward`: ``out * (dout - sum(dout * out, dim))``.

    This is the Jacobian-vector product of softmax without forming the Jacobian.
    """
    out, dim = cache
    dout = _upstream(dout, out)
    return out * (dout - np.sum(dout * out, axis=dim, keepdims=True))


def log_softmax_forward(
    x: np.ndarray, *, dim: int
) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
    """``x - log(sum(exp(x)))`` along axis ``dim``, computed without overflow.

    Parameters
    ----------
    x : ndarray of at least one axis
    dim : int
        Axis to normalise over; negative values count from the end.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``; ``exp(out)`` sums to 1 along ``dim``
    cache : tuple
        The output and the axis.
    """
    x = np.asarray(x)
    if x.size == 0:  # an empty batch: nothing to normalise (and np.max has no identity)
        out = x.copy()
        return out, (out, dim)
    # log-sum-exp with the maximum factored out: the largest term of the sum is exactly 1.
    shifted = x - np.max(x, axis=dim, keepdims=True)
    out = shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))
    return out, (out, dim)


def log_softmax_backward(dout: np.ndarray, cache: tuple[np.ndarray, int]) -> np.ndarray:
    """Gradient of :func:`log_softmax_forward`: ``dout - exp(out) * sum(dout, dim)``."""
    out, dim = cache
    dout = _upstream(dout, out)
    return dout - np.exp(out) * np.sum(dout, axis=dim, keepdims=True)
