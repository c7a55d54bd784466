"""Power-average pooling, ``torch.nn.functional.lp_pool2d``, built on :mod:`.pooling`'s average pooling.

``lp_pool2d_forward(x, *, norm_type, kernel_size, stride, ceil_mode) -> (out, cache)`` and
``lp_pool2d_backward(dout, cache) -> dx``, with ``x`` of shape (N, C, H, W).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .pooling import avg_pool2d_backward, avg_pool2d_forward, pooling_input

__all__ = ["lp_pool2d_backward", "lp_pool2d_forward"]


def lp_pool2d_forward(
    x: np.ndarray,
    *,
    norm_type: float,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    ceil_mode: bool,
) -> tuple[np.ndarray, dict[str, Any]]:
    """2-D power-average pooling, ``torch.nn.functional.lp_pool2d``.

    torch computes, with ``p = norm_type``::

        s   = avg_pool2d(x ** p, kernel_size, stride, padding=0, ceil_mode)  # count_include_pad
        out = (sign(s) * relu(|s|) * (kh * kw)) ** (1 / p)

    Consequences reproduced here:

    * ``x ** p`` is signed for odd ``p``: ``norm_type=1`` pools the plain sum of ``x`` (not of
      ``|x|``) and may be negative; ``norm_type=3`` gives NaN where the window sum of cubes
      is negative.
    * With ``ceil_mode`` a partial window is averaged over its in-input elements and then
      multiplied by ``kh * kw``, i.e. its power sum is scaled by ``kh * kw / count``.
    * Full windows give ``(sum x ** p) ** (1 / p)``; for ``p = 2`` the gradient is
      ``dout * x / out`` (times ``kh * kw / count`` in partial windows).
    * Where the window power sum is exactly zero, the gradient is zero (torch's relu
      backward masks the infinite derivative of ``** (1 / p)`` at zero).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    norm_type : float
        Finite, non-zero power ``p`` (1.0, 2.0, 3.0 in practice).
    kernel_size, stride : (int, int)
    ceil_mode : bool
        Output size as in the module docstring with padding 0 and dilation 1.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    cache : dict
    """
    x = pooling_input(x)
    power = float(norm_type)
    if power == 0 or not np.isfinite(power):
        raise ValueError("norm_type must be finite and non-zero")
    window_area = kernel_size[0] * kernel_size[1]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        powered = x ** power
        pooled, avg_cache = avg_pool2d_forward(
            powered, kernel_size=kernel_size, stride=stride, padding=(0, 0),
            ceil_mode=ceil_mode, count_include_pad=True, divisor_override=None,
        )
        scaled = np.sign(pooled) * np.maximum(np.abs(pooled), 0) * window_area
        out = scaled ** (1.0 / power)  # negative base with p = 3 gives NaN, as in torch
    cache = {"x": x, "power": power, "pooled": pooled, "scaled": scaled,
             "window_area": window_area, "avg_cache": avg_cache}
    return out, cache


def lp_pool2d_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Gradient of :func:`lp_pool2d_forward`, following torch's autograd graph step by step.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H_out, W_out)
    cache : dict from the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    x, power, pooled = cache["x"], cache["power"], cache["pooled"]
    dout = np.asarray(dout, dtype=x.dtype)
    exponent = 1.0 / power
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # out = scaled ** (1/p)
        grad_scaled = dout * (exponent * cache["scaled"] ** (exponent - 1.0))
        # scaled = sign(pooled) * relu(|pooled|) * area; sign() has zero derivative.
        grad_relu = grad_scaled * cache["window_area"] * np.sign(pooled)
        # relu backward passes nothing where its output is <= 0, which turns the
        # inf * 0 = NaN of an all-zero window into a zero gradient.
        grad_abs = np.where(np.maximum(np.abs(pooled), 0) <= 0, 0, grad_relu)
        grad_pooled = grad_abs * np.sign(pooled)
        grad_powered = avg_pool2d_backward(grad_pooled, cache["avg_cache"])
        return grad_powered * (power * x ** (power - 1.0))
