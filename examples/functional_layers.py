"""Example implementation in refcheck's contract style: conv2d, max_pool2d, linear, relu.

Each layer is a pair ``<layer>_forward(...) -> (out, cache)`` / ``<layer>_backward(dout, cache)``
on numpy arrays in torch layouts (NCHW). conv2d takes only ``stride`` and ``padding`` and
max_pool2d only ``kernel_size``, ``stride`` and ``padding``: refcheck reads the signatures and
reports cases with dilation, groups or ceil_mode as skipped (unsupported).

Check it with ``refcheck run --impl examples/functional_layers.py``.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "conv2d_backward",
    "conv2d_forward",
    "linear_backward",
    "linear_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "relu_backward",
    "relu_forward",
]


def _pads(padding: tuple[int, int] | str, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding; 'same' puts the odd extra row/column at the end."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":  # only defined for stride 1: keeps H and W
        (top, left) = ((k - 1) // 2 for k in kernel)
        return top, kernel[0] - 1 - top, left, kernel[1] - 1 - left
    return padding[0], padding[0], padding[1], padding[1]


def _window(offset: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]):
    """Index of the input pixels that kernel offset (i, j) sees, for every output pixel."""
    (i, j), (sh, sw), (oh, ow) = offset, stride, out_hw
    return (..., slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))


def conv2d_forward(x, weight, bias, *, stride, padding):
    """2-D cross-correlation (torch's conv2d) without dilation or groups.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (F, C, kh, kw)
    bias : ndarray of shape (F,) or None
    stride : (sh, sw)
    padding : (ph, pw), 'same' or 'valid'

    Returns
    -------
    out : ndarray of shape (N, F, Ho, Wo), Ho = (H + 2 ph - kh) // sh + 1 (likewise Wo)
    cache : tuple for conv2d_backward
    """
    kh, kw = weight.shape[2:]
    top, bottom, left, right = _pads(padding, (kh, kw))
    x_padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    out_hw = ((x_padded.shape[2] - kh) // stride[0] + 1, (x_padded.shape[3] - kw) // stride[1] + 1)
    out = np.zeros((x.shape[0], weight.shape[0], *out_hw), dtype=x.dtype)
    # One matrix product per kernel offset: every output pixel sees input pixel (i, j) of its window.
    for i in range(kh):
        for j in range(kw):
            patch = x_padded[_window((i, j), stride, out_hw)]
            out += np.einsum("nchw,fc->nfhw", patch, weight[:, :, i, j])
    if bias is not None:
        out += bias[None, :, None, None]
    return out, (x_padded, weight, bias is not None, stride, (top, left), x.shape)


def conv2d_backward(dout, cache):
    """Gradients of conv2d: (dx (N, C, H, W), dweight (F, C, kh, kw), dbias (F,) or None)."""
    x_padded, weight, has_bias, stride, (top, left), x_shape = cache
    out_hw = dout.shape[2:]
    grad_x_padded = np.zeros_like(x_padded)
    grad_weight = np.zeros_like(weight)
    for i in range(weight.shape[2]):
        for j in range(weight.shape[3]):
            window = _window((i, j), stride, out_hw)
            # += because windows overlap when the stride is smaller than the kernel.
            grad_x_padded[window] += np.einsum("nfhw,fc->nchw", dout, weight[:, :, i, j])
            grad_weight[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, x_padded[window])
    grad_x = grad_x_padded[:, :, top:top + x_shape[2], left:left + x_shape[3]]
    grad_bias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return grad_x, grad_weight, grad_bias


def max_pool2d_forward(x, *, kernel_size, stride, padding):
    """Max pooling; the gradient goes to the first maximum of each window (row-major), as in torch.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    kernel_size, stride, padding : (h, w) pairs; padding counts as -inf

    Returns
    -------
    out : ndarray of shape (N, C, Ho, Wo), Ho = (H + 2 ph - kh) // sh + 1 (likewise Wo)
    cache : tuple for max_pool2d_backward
    """
    (kh, kw), (ph, pw) = kernel_size, padding
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    out_hw = ((x_padded.shape[2] - kh) // stride[0] + 1, (x_padded.shape[3] - kw) // stride[1] + 1)
    offsets = [(i, j) for i in range(kh) for j in range(kw)]  # row-major, so argmax picks the first
    candidates = np.stack([x_padded[_window(offset, stride, out_hw)] for offset in offsets])
    winner = candidates.argmax(axis=0)
    out = np.take_along_axis(candidates, winner[None], axis=0)[0]
    return out, (winner, offsets, stride, (ph, pw), x_padded.shape)


def max_pool2d_backward(dout, cache):
    """Gradient of max pooling: dx of shape (N, C, H, W)."""
    winner, offsets, stride, (ph, pw), padded_shape = cache
    grad_x_padded = np.zeros(padded_shape, dtype=dout.dtype)
    for index, offset in enumerate(offsets):
        # += because overlapping windows can pick the same pixel.
        grad_x_padded[_window(offset, stride, dout.shape[2:])] += np.where(winner == index, dout, 0)
    return grad_x_padded[:, :, ph:padded_shape[2] - ph, pw:padded_shape[3] - pw]


def linear_forward(x, weight, bias):
    """x (N, *, in) @ weight (out, in).T + bias (out,) -> (N, *, out)."""
    out = x @ weight.T
    if bias is not None:
        out = out + bias
    return out, (x, weight, bias is not None)


def linear_backward(dout, cache):
    """Gradients of linear: (dx (N, *, in), dweight (out, in), dbias (out,) or None)."""
    x, weight, has_bias = cache
    # Leading axes are all "batch": flatten them for the parameter gradients.
    rows = dout.reshape(-1, dout.shape[-1])
    grad_weight = rows.T @ x.reshape(-1, x.shape[-1])
    return dout @ weight, grad_weight, rows.sum(axis=0) if has_bias else None


def relu_forward(x):
    """max(x, 0), elementwise."""
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    """dout where x > 0, else 0 (torch's relu'(0) = 0)."""
    return np.where(x > 0, dout, 0)
