"""Dropout in numpy with an explicit keep mask, forward and backward.

torch draws the mask inside ``torch.nn.functional.dropout``; here it is an input, so the layer
is deterministic and a check can hand the same mask to the reference. With ``training`` True
and ``0 < p < 1``::

    out = x * (mask / (1 - p))          # inverted dropout: kept values are scaled up
    grad_input = dout * (mask / (1 - p))

where ``mask`` holds 1 for kept and 0 for dropped elements (torch draws it as
``Bernoulli(1 - p)``, then divides it by ``1 - p`` and multiplies, as here). Special cases
follow torch's CPU code: ``p == 0`` or ``training`` False returns ``x`` unchanged and ignores
the mask (torch draws no mask then); ``p == 1`` returns ``x * 0`` (zeros, signed like ``x``;
NaN stays NaN) whatever the mask, and its gradient is zero.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["dropout_backward", "dropout_forward"]


def _keep_scale(mask: np.ndarray, p: float, dtype: np.dtype) -> np.ndarray:
    """``mask / (1 - p)`` in ``dtype``; for ``p == 1`` all zeros (torch multiplies by 0)."""
    if p == 1:
        return np.zeros(mask.shape, dtype=dtype)
    return mask.astype(dtype) / dtype.type(1 - p)


def dropout_forward(
    x: np.ndarray, mask: np.ndarray, *, p: float, training: bool
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Inverted dropout with a given keep mask (``torch.nn.functional.dropout``).

    Parameters
    ----------
    x : ndarray of any shape, floating point
    mask : ndarray of the shape of ``x``, values in {0, 1} (bool or numeric)
        1 keeps an element, 0 drops it. Not differentiated.
    p : float in [0, 1]
        Probability of dropping an element (torch default 0.5).
    training : bool
        False makes the layer the identity (torch default True).

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
        ``x * mask / (1 - p)``; ``x`` when ``p == 0`` or not training; ``x * 0`` when
        ``p == 1``.
    cache : tuple

    Raises
    ------
    ValueError
        When ``p`` lies outside [0, 1] (torch raises the same), or the mask has another
        shape or a value other than 0 and 1.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"dropout: input must be a floating-point array, got {x.dtype}")
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    mask = np.asarray(mask)
    if mask.shape != x.shape:
        raise ValueError(f"dropout: mask has shape {mask.shape}, expected {x.shape}")
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError("dropout: mask values must be 0 (drop) or 1 (keep)")
    if not training or p == 0:
        return x.copy(), (None, x.dtype)
    scale = _keep_scale(mask, p, x.dtype)
    return x * scale, (scale, x.dtype)


def dropout_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray]:
    """Gradient of :func:`dropout_forward`: ``dout * mask / (1 - p)``.

    Returns
    -------
    (grad_input,) : tuple of one ndarray, shape of ``x``
        ``dout`` itself (a copy) when the forward was the identity; zeros when ``p == 1``.
    """
    scale, dtype = cache
    if scale is None:
        return (np.array(dout, dtype=dtype, copy=True),)
    return (np.asarray(dout, dtype=dtype) * scale,)
