"""One- and three-dimensional convolution (torch.nn.functional.conv1d / conv3d) in numpy.

Both are cross-correlations over the trailing ``n`` spatial axes of a ``(N, C, *spatial)`` input,

    out[n, f, o] = bias[f] + sum_{c, k} x_pad[n, g*Cg + c, o*s + k*d] * weight[f, c, k]

with ``o`` and ``k`` multi-indices over the spatial axes (products taken per axis),
``g = f // Fg`` the group of output channel ``f``, ``Cg = C / groups`` and ``Fg = F / groups``.
The forward pass, the weight gradient and the input gradient are the dimension-agnostic pieces
of :mod:`refcheck.layers.conv_core` (one im2col layout); the input gradient is a full
convolution of the stride-dilated dout with the kernel, which is also exactly what
``conv_transpose{1,2,3}d`` computes (see :mod:`refcheck.layers.conv_transpose`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv_core import (
    SidePadding,
    Sizes,
    as_tuple,
    conv_input_gradient,
    conv_weight_gradient,
    cross_correlate_nd,
    pad_nd,
    resolve_padding_nd,
)

__all__ = [
    "ConvNdCache",
    "conv1d_backward",
    "conv1d_forward",
    "conv3d_backward",
    "conv3d_forward",
]


@dataclass(frozen=True)
class ConvNdCache:
    """What the conv backward passes need from the forward pass."""

    x_padded: np.ndarray  # (N, C, *P), forward input after zero padding
    weight: np.ndarray  # (F, C // groups, *K), at the input's dtype
    has_bias: bool
    input_shape: tuple[int, ...]  # (N, C, *spatial)
    padding: SidePadding
    stride: Sizes
    dilation: Sizes
    groups: int


def _conv_forward(x, weight, bias, *, stride, padding, dilation, groups, ndim):
    if x.ndim != ndim + 2 or weight.ndim != ndim + 2:
        raise ValueError(
            f"expected {ndim + 2}-d input and weight, got shapes {x.shape} and {weight.shape}"
        )
    stride = as_tuple(stride, ndim, "stride")
    dilation = as_tuple(dilation, ndim, "dilation")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise ValueError(f"stride {stride} and dilation {dilation} must be positive")
    dtype = x.dtype
    weight = weight.astype(dtype, copy=False)
    sides = resolve_padding_nd(padding, weight.shape[2:], stride, dilation)
    x_padded = pad_nd(x, sides)
    out = cross_correlate_nd(x_padded, weight, stride=stride, dilation=dilation, groups=groups)
    if bias is not None:
        out += bias.astype(dtype, copy=False).reshape(-1, *(1,) * ndim)
    cache = ConvNdCache(x_padded, weight, bias is not None, x.shape, sides, stride, dilation, groups)
    return out, cache


def _conv_backward(dout, cache: ConvNdCache):
    dtype = cache.x_padded.dtype
    dout = dout.astype(dtype, copy=False)
    ndim = len(cache.stride)
    # bias[f] is added at every output position of channel f.
    grad_bias = dout.sum(axis=(0, *range(2, 2 + ndim))) if cache.has_bias else None
    grad_weight = conv_weight_gradient(
        cache.x_padded, dout, cache.weight.shape[2:],
        stride=cache.stride, dilation=cache.dilation, groups=cache.groups,
    )
    grad_input = conv_input_gradient(
        dout, cache.weight, input_size=cache.input_shape[2:], padding=cache.padding,
        stride=cache.stride, dilation=cache.dilation, groups=cache.groups,
    )
    return grad_input, grad_weight, grad_bias


def conv1d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: int | tuple[int] = 1,
    padding: str | int | tuple[int] = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
) -> tuple[np.ndarray, ConvNdCache]:
    """Forward pass of torch.nn.functional.conv1d.

    Parameters
    ----------
    x : ndarray of shape (N, C, L)
    weight : ndarray of shape (F, C // groups, k)
    bias : ndarray of shape (F,) or None
    stride, dilation : int (or a 1-tuple), >= 1
    padding : int >= 0 (or a 1-tuple), 'valid', or 'same' (stride must be 1)
    groups : int, dividing C and F

    Returns
    -------
    out : ndarray of shape (N, F, OL), dtype of ``x``, with
        ``OL = (L + pad_before + pad_after - d*(k-1) - 1) // s + 1`` (must be >= 1) and
        ``out[n, f, o] = bias[f] + sum_{c, j} x_pad[n, g*Cg + c, o*s + j*d] * weight[f, c, j]``
    cache : ConvNdCache for :func:`conv1d_backward`
    """
    return _conv_forward(
        x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups, ndim=1
    )


def conv1d_backward(
    dout: np.ndarray, cache: ConvNdCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Backward pass of torch.nn.functional.conv1d.

    Parameters
    ----------
    dout : ndarray of shape (N, F, OL)
    cache : ConvNdCache from :func:`conv1d_forward`

    Returns
    -------
    grad_input : ndarray of shape (N, C, L)
    grad_weight : ndarray of shape (F, C // groups, k)
    grad_bias : ndarray of shape (F,), or None when forward had no bias
    """
    return _conv_backward(dout, cache)


def conv3d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: int | tuple[int, int, int] = 1,
    padding: str | int | tuple[int, int, int] = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
) -> tuple[np.ndarray, ConvNdCache]:
    """Forward pass of torch.nn.functional.conv3d.

    Parameters
    ----------
    x : ndarray of shape (N, C, D, H, W)
    weight : ndarray of shape (F, C // groups, kd, kh, kw)
    bias : ndarray of shape (F,) or None
    stride, dilation : (d, h, w) or int, >= 1
    padding : (d, h, w) or int, >= 0, 'valid', or 'same' (stride must be 1)
    groups : int, dividing C and F

    Returns
    -------
    out : ndarray of shape (N, F, OD, OH, OW), dtype of ``x``, each size
        ``(size + pad_before + pad_after - dilation*(k-1) - 1) // stride + 1``
    cache : ConvNdCache for :func:`conv3d_backward`
    """
    return _conv_forward(
        x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups, ndim=3
    )


def conv3d_backward(
    dout: np.ndarray, cache: ConvNdCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Backward pass of torch.nn.functional.conv3d.

    Returns
    -------
    grad_input : ndarray of shape (N, C, D, H, W)
    grad_weight : ndarray of shape (F, C // groups, kd, kh, kw)
    grad_bias : ndarray of shape (F,), or None when forward had no bias
    """
    return _conv_backward(dout, cache)
