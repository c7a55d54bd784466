"""Layer classes in torch.nn's style (forward(x) / backward(dout), parameters and gradients on the
object) for the newer layers, as a learner would write them. Conv1d, the 1-D pools, BatchNorm1d/2d,
LayerNorm, Dropout and Embedding are written out here; Conv3d, ConvTranspose2d, GroupNorm and
InstanceNorm2d wrap refcheck's numpy layers, to exercise the class plumbing under other names
(W/b, grad_weight, dW...)."""
from __future__ import annotations

import numpy as np

from refcheck import layers as L


def _same(padding, kernel, dilation):
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = dilation * (kernel - 1)
        return total // 2, total - total // 2
    return padding, padding


class Conv1d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.weight = np.zeros((out_channels, in_channels, kernel_size))
        self.bias = np.zeros(out_channels) if bias else None

    def forward(self, x):
        kernel = self.weight.shape[2]
        left, right = _same(self.padding, kernel, self.dilation)
        padded = np.pad(x, ((0, 0), (0, 0), (left, right)))
        length = (padded.shape[2] - self.dilation * (kernel - 1) - 1) // self.stride + 1
        self.index = np.arange(length)[:, None] * self.stride + np.arange(kernel)[None, :] * self.dilation
        self.columns, self.padded_shape, self.left = padded[:, :, self.index], padded.shape, left
        out = np.einsum("nclk,fck->nfl", self.columns, self.weight)
        return out if self.bias is None else out + self.bias[None, :, None]

    def backward(self, dout):
        self.dW = np.einsum("nfl,nclk->fck", dout, self.columns)
        self.db = dout.sum(axis=(0, 2)) if self.bias is not None else None
        grad_padded = np.zeros(self.padded_shape, dtype=dout.dtype)
        np.add.at(grad_padded, (slice(None), slice(None), self.index), np.einsum("nfl,fck->nclk", dout, self.weight))
        return grad_padded[:, :, self.left:self.left + self.padded_shape[2] - sum(_same(
            self.padding, self.weight.shape[2], self.dilation))]


class Conv3d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
        self.options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        self.weight = np.zeros((out_channels, in_channels // groups, *kernel_size))
        self.bias = np.zeros(out_channels) if bias else None

    def forward(self, x):
        out, self.cache = L.conv3d_forward(x, self.weight, self.bias, **self.options)
        return out

    def backward(self, dout):
        grad_input, self.grad_weight, self.grad_bias = L.conv3d_backward(dout, self.cache)
        return grad_input


class ConvTranspose2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1):
        self.options = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                            dilation=dilation)
        self.W = np.zeros((in_channels, out_channels // groups, *kernel_size))
        self.b = np.zeros(out_channels) if bias else None

    def forward(self, x):
        out, self.cache = L.conv_transpose2d_forward(x, self.W, self.b, **self.options)
        return out

    def backward(self, dout):
        grad_input, self.dW, self.db = L.conv_transpose2d_backward(dout, self.cache)
        return grad_input


class MaxPool1d:
    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x):
        padded = np.pad(x, ((0, 0), (0, 0), (self.padding, self.padding)), constant_values=-np.inf)
        length = (padded.shape[2] - self.kernel) // self.stride + 1
        self.index = np.arange(length)[:, None] * self.stride + np.arange(self.kernel)[None, :]
        windows = padded[:, :, self.index]
        self.winner = np.take_along_axis(self.index[None, None], windows.argmax(axis=3)[..., None], axis=3)[..., 0]
        self.padded_shape = padded.shape
        return windows.max(axis=3)

    def backward(self, dout):
        grad = np.zeros(self.padded_shape, dtype=dout.dtype)
        n, c, _ = np.indices(dout.shape)
        np.add.at(grad, (n, c, self.winner), dout)
        return grad[:, :, self.padding:self.padded_shape[2] - self.padding]


class AvgPool1d:
    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        self.kernel, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.count_include_pad = count_include_pad

    def forward(self, x):
        padded = np.pad(x, ((0, 0), (0, 0), (self.padding, self.padding)))
        real = np.pad(np.ones(x.shape[2]), (self.padding, self.padding))
        length = (padded.shape[2] - self.kernel) // self.stride + 1
        self.index = np.arange(length)[:, None] * self.stride + np.arange(self.kernel)[None, :]
        counts = np.full(length, self.kernel, dtype=x.dtype) if self.count_include_pad else \
            real[self.index].sum(axis=1).astype(x.dtype)
        self.counts, self.padded_shape = counts, padded.shape
        return padded[:, :, self.index].sum(axis=3) / counts

    def backward(self, dout):
        grad = np.zeros(self.padded_shape, dtype=dout.dtype)
        share = (dout / self.counts)[..., None] * np.ones(self.kernel, dtype=dout.dtype)
        np.add.at(grad, (slice(None), slice(None), self.index), share)
        return grad[:, :, self.padding:self.padded_shape[2] - self.padding]


class BatchNorm1d:
    """Batch statistics over every axis but the channels; running statistics with the unbiased variance."""

    axes = (0, 2)

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.eps, self.momentum, self.training = eps, momentum, True
        self.gamma, self.beta = np.ones(num_features), np.zeros(num_features)
        self.running_mean, self.running_var = np.zeros(num_features), np.ones(num_features)

    def _shape(self, x):
        return [1, -1] + [1] * (x.ndim - 2)

    def forward(self, x):
        axes = tuple(a for a in self.axes if a < x.ndim)
        shape = self._shape(x)
        if self.training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            count = x.size // x.shape[1]
            if self.running_mean is not None:
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var * count / (count - 1)
        else:
            mean, var = self.running_mean, self.running_var
        self.inv_std = 1.0 / np.sqrt(var + self.eps).reshape(shape)
        self.x_hat = (x - mean.reshape(shape)) * self.inv_std
        self.axes_used = axes
        gamma = 1.0 if self.gamma is None else self.gamma.reshape(shape)
        beta = 0.0 if self.beta is None else self.beta.reshape(shape)
        return (self.x_hat * gamma + beta).astype(x.dtype)

    def backward(self, dout):
        shape, axes = self._shape(dout), self.axes_used
        self.dgamma = (dout * self.x_hat).sum(axis=axes)
        self.dbeta = dout.sum(axis=axes)
        dx_hat = dout * (1.0 if self.gamma is None else self.gamma.reshape(shape))
        if not self.training:
            return (dx_hat * self.inv_std).astype(dout.dtype)
        mean_dx_hat = dx_hat.mean(axis=axes, keepdims=True)
        mean_dx_hat_x_hat = (dx_hat * self.x_hat).mean(axis=axes, keepdims=True)
        return ((dx_hat - mean_dx_hat - self.x_hat * mean_dx_hat_x_hat) * self.inv_std).astype(dout.dtype)


class BatchNorm2d(BatchNorm1d):
    axes = (0, 2, 3)


class LayerNorm:
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        self.shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = np.ones(self.shape) if elementwise_affine else None
        self.bias = np.zeros(self.shape) if elementwise_affine else None

    def forward(self, x):
        self.axes = tuple(range(x.ndim - len(self.shape), x.ndim))
        mean, var = x.mean(axis=self.axes, keepdims=True), x.var(axis=self.axes, keepdims=True)
        self.inv_std = 1.0 / np.sqrt(var + self.eps)
        self.x_hat = (x - mean) * self.inv_std
        return self.x_hat * (1.0 if self.weight is None else self.weight) + (0.0 if self.bias is None else self.bias)

    def backward(self, dout):
        lead = tuple(range(dout.ndim - len(self.shape)))
        self.grad_weight = (dout * self.x_hat).sum(axis=lead)
        self.grad_bias = dout.sum(axis=lead)
        dx_hat = dout * (1.0 if self.weight is None else self.weight)
        return (dx_hat - dx_hat.mean(axis=self.axes, keepdims=True)
                - self.x_hat * (dx_hat * self.x_hat).mean(axis=self.axes, keepdims=True)) * self.inv_std


class GroupNorm:
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        self.num_groups, self.eps = num_groups, eps
        self.weight = np.ones(num_channels) if affine else None
        self.bias = np.zeros(num_channels) if affine else None

    def forward(self, x):
        out, self.cache = L.group_norm_forward(x, self.weight, self.bias, num_groups=self.num_groups, eps=self.eps)
        return out

    def backward(self, dout):
        grad_input, self.grad_weight, self.grad_bias = L.group_norm_backward(dout, self.cache)
        return grad_input


class InstanceNorm2d:
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False):
        self.eps, self.momentum, self.training = eps, momentum, True
        self.weight = np.ones(num_features) if affine else None
        self.bias = np.zeros(num_features) if affine else None
        self.running_mean = np.zeros(num_features) if track_running_stats else None
        self.running_var = np.ones(num_features) if track_running_stats else None

    def forward(self, x):
        (out, mean, var), self.cache = L.instance_norm_forward(
            x, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats=self.training,
            momentum=self.momentum, eps=self.eps)
        self.running_mean, self.running_var = mean, var
        return out

    def backward(self, dout):
        grad_input, self.grad_weight, self.grad_bias = L.instance_norm_backward(dout, self.cache)
        return grad_input


class Dropout:
    """Inverted dropout drawing its own mask."""

    def __init__(self, p=0.5):
        self.p, self.training = p, True

    def forward(self, x):
        if not self.training or self.p == 0:
            self.mask = np.ones(x.shape, dtype=bool)
            return x
        if self.p == 1:
            self.mask = np.zeros(x.shape, dtype=bool)
            return x * 0
        self.mask = np.random.rand(*x.shape) < 1 - self.p
        return x * self.mask / x.dtype.type(1 - self.p)

    def backward(self, dout):
        if not self.training or self.p == 0:
            return dout
        if self.p == 1:
            return dout * 0
        return dout * self.mask / dout.dtype.type(1 - self.p)


class Embedding:
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        self.W = np.zeros((num_embeddings, embedding_dim))
        self.padding_idx = padding_idx

    def forward(self, indices):
        self.indices = indices
        return self.W[indices]

    def backward(self, dout):
        self.dW = np.zeros_like(self.W)
        np.add.at(self.dW, self.indices, dout)
        if self.padding_idx is not None:
            self.dW[self.padding_idx] = 0
