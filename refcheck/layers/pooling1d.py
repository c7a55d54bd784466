"""One-dimensional pooling (torch.nn.functional.max_pool1d / avg_pool1d) in numpy.

Inputs are ``(N, C, L)`` arrays (any number of leading axes before ``L`` works); outputs and
gradients keep the input's dtype. Window ``o`` reads, in input coordinates, the positions

    o*s - p + j*d,   j = 0 .. k-1       (d = 1 for avg_pool1d)

Output length (torch's ``pooling_output_shape``, :func:`refcheck.layers.pooling.pool_output_size`),
with effective kernel ``e = d*(k-1) + 1``::

    ceil_mode=False:  OL = floor((L + 2p - e) / s) + 1
    ceil_mode=True:   OL = ceil((L + 2p - e) / s) + 1, minus one if the last window would start
                      at or beyond L + p in padded coordinates (inside the right padding): every
                      window starts inside the input or the left padding.

torch's validity rules, enforced here: ``k, s, d >= 1``; ``0 <= p <= k // 2``; ``OL >= 1``.

The loops run over the ``k`` kernel offsets only; each offset is one strided slice of a padded
copy of the input covering every window at once.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._pool_geometry import _Axis, axis_layout
from .pooling import pool_output_size

__all__ = [
    "Pool1dGeometry",
    "avg_pool1d_backward",
    "avg_pool1d_forward",
    "max_pool1d_backward",
    "max_pool1d_forward",
    "pool1d_geometry",
]


def _single(value: int | tuple[int] | None, name: str) -> int | None:
    """An int, a 1-tuple (torch accepts both) or None, as an int or None."""
    if value is None or isinstance(value, (int, np.integer)):
        return None if value is None else int(value)
    values = tuple(value)
    if len(values) != 1:
        raise ValueError(f"{name} must be an int or a 1-tuple, got {value!r}")
    return int(values[0])


# The 1-D window layout is the 2-D pooling's per-axis one; only torch's validity rules differ.
Pool1dGeometry = _Axis


def pool1d_geometry(
    size: int,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None,
    padding: int | tuple[int],
    dilation: int | tuple[int],
    ceil_mode: bool,
) -> Pool1dGeometry:
    """Validate the hyperparameters as torch does and lay out the windows.

    ``stride=None`` (or an empty tuple) means ``stride = kernel_size``, torch's default.
    """
    if stride == ():
        stride = None
    kernel = _single(kernel_size, "kernel_size")
    stride = kernel if stride is None else _single(stride, "stride")
    padding, dilation = _single(padding, "padding"), _single(dilation, "dilation")
    if kernel < 1 or stride < 1 or dilation < 1:
        raise ValueError(
            f"kernel_size {kernel}, stride {stride} and dilation {dilation} must be positive"
        )
    if padding < 0 or padding > kernel // 2:
        raise ValueError(f"padding {padding} must be in [0, kernel_size // 2 = {kernel // 2}]")
    out = pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    if out < 1:
        raise ValueError(f"input length {size} gives output length {out} < 1")
    return axis_layout(size, kernel, stride, padding, dilation, out)


def _pool_input(x: Any) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"expected a float32 or float64 array, got {array.dtype}")
    if array.ndim < 2:
        raise ValueError(f"expected an (N, C, L) array, got shape {array.shape}")
    return array


def _padded(x: np.ndarray, geometry: Pool1dGeometry) -> np.ndarray:
    buffer = np.zeros(x.shape[:-1] + (geometry.padded,), dtype=x.dtype)
    buffer[..., geometry.padding : geometry.padding + geometry.size] = x
    return buffer


def _scatter(contributions, geometry: Pool1dGeometry, shape, dtype) -> np.ndarray:
    """Input gradient from ``contributions(j)``, what every window sends to its offset-j element.

    Overlapping windows accumulate: different offsets can hit the same position, so each is
    added (``+=``) rather than assigned; gradient landing in the padding is cropped away.
    """
    grad = np.zeros(shape[:-1] + (geometry.padded,), dtype=dtype)
    for j in range(geometry.kernel):
        grad[..., geometry.slices[j]] += contributions(j)
    return np.ascontiguousarray(grad[..., geometry.padding : geometry.padding + geometry.size])


def max_pool1d_forward(
    x: np.ndarray,
    *,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    dilation: int | tuple[int] = 1,
    ceil_mode: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """1-D max pooling, ``torch.nn.functional.max_pool1d``.

    Parameters
    ----------
    x : ndarray of shape (N, C, L)
    kernel_size : int >= 1
    stride : int >= 1, or None for ``kernel_size``
    padding : int in [0, kernel_size // 2]; padding acts as ``-inf`` (it never wins, not even
        against ``-inf`` inputs: a window's first real element is its initial maximum)
    dilation : int >= 1
    ceil_mode : bool, see the module docstring

    Returns
    -------
    out : ndarray of shape (N, C, OL), ``out[..., o] = max_j x[..., o*s - p + j*d]`` over real
        positions
    cache : dict with the kernel offset of each window's maximum: the FIRST maximum on ties, as
        torch routes the gradient; a NaN replaces the running maximum (the last NaN wins, so NaN
        propagates)
    """
    x = _pool_input(x)
    geometry = pool1d_geometry(x.shape[-1], kernel_size, stride, padding, dilation, ceil_mode)
    buffer = _padded(x, geometry)
    best_value = np.full(x.shape[:-1] + (geometry.out,), -np.inf, dtype=x.dtype)
    best_offset = np.full(best_value.shape, -1, dtype=np.int64)
    for j in range(geometry.kernel):
        candidate = buffer[..., geometry.slices[j]]
        # The first real element is taken unconditionally; then strictly greater or NaN.
        take = geometry.valid[j] & (
            (best_offset < 0) | (candidate > best_value) | np.isnan(candidate)
        )
        best_value = np.where(take, candidate, best_value)
        best_offset = np.where(take, j, best_offset)
    cache = {"best_offset": best_offset, "geometry": geometry, "shape": x.shape, "dtype": x.dtype}
    return best_value, cache


def max_pool1d_backward(dout: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray]:
    """Gradient of :func:`max_pool1d_forward`.

    Returns
    -------
    (grad_input,) : ndarray of shape (N, C, L); each window sends ``dout`` to its selected
        element, and overlapping windows that select the same element add up
    """
    dout = np.asarray(dout, dtype=cache["dtype"])
    best_offset = cache["best_offset"]
    grad = _scatter(
        lambda j: np.where(best_offset == j, dout, 0), cache["geometry"], cache["shape"],
        cache["dtype"],
    )
    return (grad,)


def avg_pool1d_forward(
    x: np.ndarray,
    *,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """1-D average pooling, ``torch.nn.functional.avg_pool1d``.

    Parameters
    ----------
    x : ndarray of shape (N, C, L)
    kernel_size : int >= 1
    stride : int >= 1, or None for ``kernel_size``
    padding : int in [0, kernel_size // 2], zeros
    ceil_mode : bool, see the module docstring
    count_include_pad : bool
        The divisor counts the zero padding inside the window (but never the part of a
        ceil_mode window hanging past the right padding); otherwise only real input elements.

    Returns
    -------
    out : ndarray of shape (N, C, OL), window sum over real elements divided by the divisor
    cache : dict
    """
    x = _pool_input(x)
    geometry = pool1d_geometry(x.shape[-1], kernel_size, stride, padding, 1, ceil_mode)
    buffer = _padded(x, geometry)
    total = np.zeros(x.shape[:-1] + (geometry.out,), dtype=x.dtype)
    for j in range(geometry.kernel):
        total += buffer[..., geometry.slices[j]]  # zero padding adds nothing
    counts = geometry.window_full if count_include_pad else geometry.window_clipped
    divisor = counts.astype(x.dtype)
    cache = {"divisor": divisor, "geometry": geometry, "shape": x.shape, "dtype": x.dtype}
    return total / divisor, cache


def avg_pool1d_backward(dout: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray]:
    """Gradient of :func:`avg_pool1d_forward`: ``dout / divisor`` spread over each window.

    Returns
    -------
    (grad_input,) : ndarray of shape (N, C, L)
    """
    share = np.asarray(dout, dtype=cache["dtype"]) / cache["divisor"]
    return (_scatter(lambda j: share, cache["geometry"], cache["shape"], cache["dtype"]),)
