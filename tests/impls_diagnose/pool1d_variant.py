"""Loop-style 1-D pooling backwards with switches for planted mistakes (imported by fixtures).

The forward is refcheck's; the backwards are written here from the windows' definition.
"""
import numpy as np


def _windows(x, out, kernel, stride, padding, dilation, fill):
    length, count = x.shape[-1], out.shape[-1]
    padded = max(length + 2 * padding, (count - 1) * stride + dilation * (kernel - 1) + 1)
    buffer = np.full(x.shape[:-1] + (padded,), fill, dtype=x.dtype)
    buffer[..., padding:padding + length] = x
    index = np.arange(count)[:, None] * stride + np.arange(kernel)[None, :] * dilation
    return buffer, index


def max_pool1d_backward_variant(dout, x, out, kernel, stride, padding, dilation, *, ties_to_all=False,
                                assign=False):
    buffer, index = _windows(x, out, kernel, stride, padding, dilation, -np.inf)
    grad = np.zeros_like(buffer)
    for window in range(out.shape[-1]):
        values = buffer[..., index[window]]
        if ties_to_all:
            share = np.where(values == out[..., window, None], dout[..., window, None], 0)
            for offset, position in enumerate(index[window]):
                grad[..., position] += share[..., offset]
            continue
        first = np.argmax(values, axis=-1)
        chosen = np.zeros(values.shape, dtype=bool)
        np.put_along_axis(chosen, first[..., None], True, axis=-1)
        for offset, position in enumerate(index[window]):
            if assign:
                grad[..., position] = np.where(chosen[..., offset], dout[..., window], grad[..., position])
            else:
                grad[..., position] += np.where(chosen[..., offset], dout[..., window], 0)
    return grad[..., padding:padding + x.shape[-1]]


def avg_pool1d_backward_assigned(dout, x, kernel, stride, padding, count_include_pad):
    """Each window, in order, assigns dout / divisor to its input elements (ceil_mode=False only)."""
    length = x.shape[-1]
    grad = np.zeros_like(x)
    for window in range(dout.shape[-1]):
        start = window * stride - padding
        low, high = max(start, 0), min(start + kernel, length)
        divisor = kernel if count_include_pad else high - low
        grad[..., low:high] = (dout[..., window] / divisor)[..., None]
    return grad
