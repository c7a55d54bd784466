"""Example implementation in the object style: Conv2d, MaxPool2d, Linear, ReLU, MSELoss.

Each layer is a class with ``forward`` and ``backward`` methods, as in many from-scratch courses.
Layers keep what backward needs on ``self``; parameter gradients are left on ``grad_weight`` and
``grad_bias``. refcheck finds the classes by their torch.nn names and checks them through
``refcheck.adapters`` with ``refcheck run --impl examples/object_layers.py``.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Conv2d", "Linear", "MSELoss", "MaxPool2d", "ReLU"]


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


class Conv2d:
    """2-D cross-correlation as in torch.nn.Conv2d (no dilation, no groups), by im2col.

    Input (N, C, H, W) -> output (N, F, Ho, Wo), Ho = (H + pad_top + pad_bottom - kh) // sh + 1.
    weight (F, C, kh, kw), bias (F,) or None.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, seed: int = 0):
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        rng = np.random.default_rng(seed)
        scale = 1 / np.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        self.weight = rng.uniform(-scale, scale, (out_channels, in_channels, *self.kernel_size))
        self.bias = rng.uniform(-scale, scale, out_channels) if bias else None

    def _pads(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right); 'same' gives the odd extra row/column to the end, as torch."""
        (kh, kw) = self.kernel_size
        if self.padding == "valid":
            return 0, 0, 0, 0
        if self.padding == "same":
            return (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2
        return self.padding[0], self.padding[0], self.padding[1], self.padding[1]

    def forward(self, x):
        top, bottom, left, right = self._pads()
        self.x_shape = x.shape
        x_padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        self.padded_shape = x_padded.shape
        (sh, sw) = self.stride
        patches = sliding_window_view(x_padded, self.kernel_size, axis=(2, 3))[:, :, ::sh, ::sw]
        n, c, out_h, out_w = patches.shape[:4]
        # im2col: one row per output pixel, one column per (channel, kernel row, kernel column).
        self.columns = patches.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, -1)
        out = self.columns @ self.weight.reshape(self.weight.shape[0], -1).T
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(n, out_h, out_w, -1).transpose(0, 3, 1, 2)

    def backward(self, dout):
        n, f, out_h, out_w = dout.shape
        dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, f)
        self.grad_weight = (dout_rows.T @ self.columns).reshape(self.weight.shape)
        self.grad_bias = dout_rows.sum(axis=0) if self.bias is not None else None
        # col2im: add each column's gradient back to the input pixel it was copied from.
        grad_columns = (dout_rows @ self.weight.reshape(f, -1)).reshape(
            n, out_h, out_w, *self.weight.shape[1:])
        grad_padded = np.zeros(self.padded_shape, dtype=dout.dtype)
        (sh, sw), (kh, kw) = self.stride, self.kernel_size
        for i in range(kh):
            for j in range(kw):
                grad_padded[:, :, i:i + sh * out_h:sh, j:j + sw * out_w:sw] += (
                    grad_columns[:, :, :, :, i, j].transpose(0, 3, 1, 2))
        top, _, left, _ = self._pads()
        return grad_padded[:, :, top:top + self.x_shape[2], left:left + self.x_shape[3]]


class MaxPool2d:
    """Max pooling as in torch.nn.MaxPool2d (no dilation, no ceil_mode); padding counts as -inf.

    Input (N, C, H, W) -> output (N, C, Ho, Wo), Ho = (H + 2 ph - kh) // sh + 1.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)
        self.padding = _pair(padding)

    def forward(self, x):
        (ph, pw), (sh, sw), (kh, kw) = self.padding, self.stride, self.kernel_size
        x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        self.padded_shape = x_padded.shape
        windows = sliding_window_view(x_padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        windows = windows.reshape(*windows.shape[:4], kh * kw)
        self.argmax = windows.argmax(axis=-1)  # first maximum in row-major order, like torch
        return np.take_along_axis(windows, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, dout):
        (ph, pw), (sh, sw), (kh, kw) = self.padding, self.stride, self.kernel_size
        out_h, out_w = dout.shape[2:]
        grad_padded = np.zeros(self.padded_shape, dtype=dout.dtype)
        for i in range(kh):
            for j in range(kw):
                routed = np.where(self.argmax == i * kw + j, dout, 0)
                grad_padded[:, :, i:i + sh * out_h:sh, j:j + sw * out_w:sw] += routed
        height, width = self.padded_shape[2:]
        return grad_padded[:, :, ph:height - ph, pw:width - pw]


class Linear:
    """y = x @ weight.T + bias; x (N, *, in_features), weight (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, seed: int = 0):
        rng = np.random.default_rng(seed)
        scale = 1 / np.sqrt(in_features)
        self.weight = rng.uniform(-scale, scale, (out_features, in_features))
        self.bias = rng.uniform(-scale, scale, out_features) if bias else None

    def forward(self, x):
        self.x = x
        out = x @ self.weight.T
        return out + self.bias if self.bias is not None else out

    def backward(self, dout):
        # Leading axes are all "batch": flatten them for the parameter gradients.
        rows = dout.reshape(-1, dout.shape[-1])
        self.grad_weight = rows.T @ self.x.reshape(-1, self.x.shape[-1])
        self.grad_bias = rows.sum(axis=0) if self.bias is not None else None
        return dout @ self.weight


class ReLU:
    """max(x, 0) elementwise; the gradient at exactly 0 is 0, as in torch."""

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, 0)

    def backward(self, dout):
        return np.where(self.positive, dout, 0)


class MSELoss:
    """Mean (or summed) squared error between input and target of the same shape."""

    def __init__(self, reduction: str = "mean"):
        self.reduction = reduction

    def forward(self, input, target):
        self.diff = input - target
        squared = self.diff ** 2
        return squared.mean() if self.reduction == "mean" else squared.sum()

    def backward(self):
        """d(loss)/d(input); the caller multiplies by the upstream gradient."""
        grad = 2 * self.diff
        return grad / self.diff.size if self.reduction == "mean" else grad
