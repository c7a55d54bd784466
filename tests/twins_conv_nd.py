"""Slow loop twins of conv1d, conv3d and conv_transpose2d, independent oracles for the tests.

Each forward visits every output element and sums over its taps explicitly; each backward walks
the same loops and accumulates element by element (``+=``). Padding is never materialised: taps
outside the input read zero and send no gradient. Nothing here reuses refcheck.layers.

conv_transpose2d is written as a *gather* over output elements (which input pixels and taps
reach out[oh]? those with oh + p - i*d = ih*s), not as the scatter the vectorised layer uses.
"""
from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np

__all__ = [
    "conv1d_backward_loops",
    "conv1d_forward_loops",
    "conv3d_backward_loops",
    "conv3d_forward_loops",
    "conv_transpose2d_backward_loops",
    "conv_transpose2d_forward_loops",
]


def _tuple(value, ndim: int) -> tuple[int, ...]:
    return (value,) * ndim if isinstance(value, int) else tuple(value)


def _conv_geometry(x_shape, kernel_size, stride, padding, dilation):
    """Per axis: padding before, and output size."""
    ndim = len(kernel_size)
    stride, dilation = _tuple(stride, ndim), _tuple(dilation, ndim)
    before, out = [], []
    for a in range(ndim):
        span = dilation[a] * (kernel_size[a] - 1)
        if padding == "valid":
            lo = total = 0
        elif padding == "same":
            lo, total = span // 2, span
        else:
            lo = _tuple(padding, ndim)[a]
            total = 2 * lo
        before.append(lo)
        out.append((x_shape[2 + a] + total - span - 1) // stride[a] + 1)
    return stride, dilation, tuple(before), tuple(out)


def _conv_forward_loops(x, weight, bias, *, stride, padding, dilation, groups):
    filters, channels_per_group = weight.shape[:2]
    kernel_size = weight.shape[2:]
    stride, dilation, before, out_size = _conv_geometry(
        x.shape, kernel_size, stride, padding, dilation
    )
    filters_per_group = filters // groups
    out = np.zeros((x.shape[0], filters, *out_size), dtype=x.dtype)
    for n, f in product(range(x.shape[0]), range(filters)):
        group = f // filters_per_group
        for o in np.ndindex(*out_size):
            total = 0.0 if bias is None else bias[f]
            for c in range(channels_per_group):
                for k in np.ndindex(*kernel_size):
                    pos = tuple(o[a] * stride[a] - before[a] + k[a] * dilation[a]
                                for a in range(len(o)))
                    if all(0 <= pos[a] < x.shape[2 + a] for a in range(len(pos))):
                        total += x[(n, group * channels_per_group + c, *pos)] * weight[(f, c, *k)]
            out[(n, f, *o)] = total
    cache = {"x": x, "weight": weight, "has_bias": bias is not None, "stride": stride,
             "dilation": dilation, "before": before, "groups": groups}
    return out, cache


def _conv_backward_loops(dout, cache):
    x, weight, groups = cache["x"], cache["weight"], cache["groups"]
    stride, dilation, before = cache["stride"], cache["dilation"], cache["before"]
    filters, channels_per_group = weight.shape[:2]
    kernel_size = weight.shape[2:]
    filters_per_group = filters // groups
    grad_input, grad_weight = np.zeros_like(x), np.zeros_like(weight)
    grad_bias = np.zeros(filters, dtype=x.dtype) if cache["has_bias"] else None
    for n, f in product(range(x.shape[0]), range(filters)):
        group = f // filters_per_group
        for o in np.ndindex(*dout.shape[2:]):
            upstream = dout[(n, f, *o)]
            if grad_bias is not None:
                grad_bias[f] += upstream
            for c in range(channels_per_group):
                channel = group * channels_per_group + c
                for k in np.ndindex(*kernel_size):
                    pos = tuple(o[a] * stride[a] - before[a] + k[a] * dilation[a]
                                for a in range(len(o)))
                    if all(0 <= pos[a] < x.shape[2 + a] for a in range(len(pos))):
                        grad_input[(n, channel, *pos)] += weight[(f, c, *k)] * upstream
                        grad_weight[(f, c, *k)] += x[(n, channel, *pos)] * upstream
    return grad_input, grad_weight, grad_bias


def conv1d_forward_loops(x, weight, bias, *, stride, padding, dilation, groups):
    """conv1d by loops; x (N, C, L), weight (F, C//groups, k) -> (N, F, OL)."""
    return _conv_forward_loops(
        x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups
    )


def conv1d_backward_loops(dout, cache):
    """-> (grad_input, grad_weight, grad_bias or None)."""
    return _conv_backward_loops(dout, cache)


def conv3d_forward_loops(x, weight, bias, *, stride, padding, dilation, groups):
    """conv3d by loops; x (N, C, D, H, W), weight (F, C//groups, kd, kh, kw)."""
    return _conv_forward_loops(
        x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups
    )


def conv3d_backward_loops(dout, cache):
    """-> (grad_input, grad_weight, grad_bias or None)."""
    return _conv_backward_loops(dout, cache)


def _source(out_index: int, tap: int, stride: int, padding: int, dilation: int, size: int):
    """The input index ih with ih*s - p + tap*d == out_index, or None if there is none."""
    shifted = out_index + padding - tap * dilation
    if shifted % stride or not 0 <= shifted // stride < size:
        return None
    return shifted // stride


def conv_transpose2d_forward_loops(
    x, weight, bias, *, stride, padding, output_padding, groups, dilation
) -> tuple[np.ndarray, dict[str, Any]]:
    """conv_transpose2d by loops over every output element.

    x (N, C_in, H, W), weight (C_in, C_out//groups, kh, kw) -> (N, C_out, OH, OW),
    ``OH = (H-1)*s - 2p + d*(kh-1) + output_padding + 1``.
    """
    stride, padding = _tuple(stride, 2), _tuple(padding, 2)
    dilation, output_padding = _tuple(dilation, 2), _tuple(output_padding, 2)
    batch, channels_in, height, width = x.shape
    _, out_per_group, kh, kw = weight.shape
    in_per_group = channels_in // groups
    out_h = (height - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    out_w = (width - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    out = np.zeros((batch, out_per_group * groups, out_h, out_w), dtype=x.dtype)
    # Which (input pixel, tap) pairs feed each output element, found once and reused by backward.
    feeds = {}
    for oh, ow in product(range(out_h), range(out_w)):
        pairs = []
        for i, j in product(range(kh), range(kw)):
            ih = _source(oh, i, stride[0], padding[0], dilation[0], height)
            iw = _source(ow, j, stride[1], padding[1], dilation[1], width)
            if ih is not None and iw is not None:
                pairs.append((ih, iw, i, j))
        feeds[oh, ow] = pairs
    for n, co_all in product(range(batch), range(out.shape[1])):
        group, co = divmod(co_all, out_per_group)
        for oh, ow in product(range(out_h), range(out_w)):
            total = 0.0 if bias is None else bias[co_all]
            for ci in range(group * in_per_group, (group + 1) * in_per_group):
                for ih, iw, i, j in feeds[oh, ow]:
                    total += x[n, ci, ih, iw] * weight[ci, co, i, j]
            out[n, co_all, oh, ow] = total
    cache = {"x": x, "weight": weight, "has_bias": bias is not None, "groups": groups,
             "feeds": feeds}
    return out, cache


def conv_transpose2d_backward_loops(dout, cache):
    """-> (grad_input, grad_weight, grad_bias or None), accumulated over every output element."""
    x, weight, groups, feeds = cache["x"], cache["weight"], cache["groups"], cache["feeds"]
    out_per_group = weight.shape[1]
    in_per_group = x.shape[1] // groups
    grad_input, grad_weight = np.zeros_like(x), np.zeros_like(weight)
    grad_bias = np.zeros(dout.shape[1], dtype=x.dtype) if cache["has_bias"] else None
    for n, co_all in product(range(x.shape[0]), range(dout.shape[1])):
        group, co = divmod(co_all, out_per_group)
        for (oh, ow), pairs in feeds.items():
            upstream = dout[n, co_all, oh, ow]
            if grad_bias is not None:
                grad_bias[co_all] += upstream
            for ci in range(group * in_per_group, (group + 1) * in_per_group):
                for ih, iw, i, j in pairs:
                    grad_input[n, ci, ih, iw] += weight[ci, co, i, j] * upstream
                    grad_weight[ci, co, i, j] += x[n, ci, ih, iw] * upstream
    return grad_input, grad_weight, grad_bias
