"""Slow loop twin of conv2d, an independent oracle for the vectorised layer in tests.

Every output pixel is computed by explicit loops over the kernel taps, and the backward pass
walks the same loops, accumulating each gradient element by element (``+=``), so an input used
by several windows collects every contribution. Padding is never materialised: taps that fall
outside the input read zero and send no gradient. Nothing here reuses refcheck.layers.conv.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["conv2d_backward_loops", "conv2d_forward_loops"]


def _same_or_explicit_padding(
    padding: str | tuple[int, int], kernel_size: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int]:
    """Top and left padding; the bottom/right padding only changes the output size."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        # torch: total dilation*(k-1), smaller half first.
        return (dilation[0] * (kernel_size[0] - 1)) // 2, (dilation[1] * (kernel_size[1] - 1)) // 2
    return padding[0], padding[1]


def _output_size(
    size: int, kernel: int, stride: int, dilation: int, padding: str | tuple[int, int], axis: int
) -> int:
    if padding == "same":
        return size
    total = 0 if padding == "valid" else 2 * padding[axis]
    return (size + total - dilation * (kernel - 1) - 1) // stride + 1


def conv2d_forward_loops(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: tuple[int, int],
    padding: str | tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """conv2d forward by loops; x (N, C, H, W), weight (F, C//groups, kh, kw) -> (N, F, OH, OW)."""
    batch, channels, height, width = x.shape
    filters, channels_per_group, kh, kw = weight.shape
    filters_per_group = filters // groups
    top, left = _same_or_explicit_padding(padding, (kh, kw), dilation)
    out_h = _output_size(height, kh, stride[0], dilation[0], padding, 0)
    out_w = _output_size(width, kw, stride[1], dilation[1], padding, 1)
    out = np.zeros((batch, filters, out_h, out_w), dtype=x.dtype)
    for n in range(batch):
        for f in range(filters):
            group = f // filters_per_group
            for oh in range(out_h):
                for ow in range(out_w):
                    total = 0.0 if bias is None else bias[f]
                    for c in range(channels_per_group):
                        for i in range(kh):
                            for j in range(kw):
                                row = oh * stride[0] - top + i * dilation[0]
                                col = ow * stride[1] - left + j * dilation[1]
                                if 0 <= row < height and 0 <= col < width:
                                    channel = group * channels_per_group + c
                                    total += x[n, channel, row, col] * weight[f, c, i, j]
                    out[n, f, oh, ow] = total
    cache = {
        "x": x, "weight": weight, "has_bias": bias is not None, "stride": stride,
        "dilation": dilation, "groups": groups, "top": top, "left": left,
    }
    return out, cache


def conv2d_backward_loops(
    dout: np.ndarray, cache: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """conv2d backward by loops -> (grad_input, grad_weight, grad_bias or None)."""
    x, weight = cache["x"], cache["weight"]
    stride, dilation, groups = cache["stride"], cache["dilation"], cache["groups"]
    top, left = cache["top"], cache["left"]
    batch, channels, height, width = x.shape
    filters, channels_per_group, kh, kw = weight.shape
    filters_per_group = filters // groups
    out_h, out_w = dout.shape[2:]
    grad_input = np.zeros_like(x)
    grad_weight = np.zeros_like(weight)
    grad_bias = np.zeros(filters, dtype=x.dtype) if cache["has_bias"] else None
    for n in range(batch):
        for f in range(filters):
            group = f // filters_per_group
            for oh in range(out_h):
                for ow in range(out_w):
                    upstream = dout[n, f, oh, ow]
                    if grad_bias is not None:
                        grad_bias[f] += upstream
                    for c in range(channels_per_group):
                        channel = group * channels_per_group + c
                        for i in range(kh):
                            for j in range(kw):
                                row = oh * stride[0] - top + i * dilation[0]
                                col = ow * stride[1] - left + j * dilation[1]
                                if 0 <= row < height and 0 <= col < width:
                                    # out += x * w: each factor's gradient is the other one
                                    # times the upstream gradient.
                                    grad_input[n, channel, row, col] += (
                                        weight[f, c, i, j] * upstream
                                    )
                                    grad_weight[f, c, i, j] += x[n, channel, row, col] * upstream
    return grad_input, grad_weight, grad_bias
