"""Numpy formulas for 2-d cross-correlation, true convolution and their gradients.

Notation (torch layouts): x is (N, C, H, W), the weight W is (F, C/groups, kh, kw), the output
y and the upstream gradient dY are (N, F, Ho, Wo), with

    Ho = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1        (same for the width)

for stride (sh, sw), padding (ph, pw) and dilation (dh, dw). ``⋆`` is cross-correlation (the kernel
slides unflipped; torch's conv2d), ``∗`` is the textbook convolution (sum over x[u] k[m - u]).

Each function is written from its own definition, not from another one here, so that comparing
them (in ``identities``) is a real check of the identities between them.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "Pair",
    "conv_output_size",
    "cross_correlate2d",
    "dilate2d",
    "fit_to_padded_input",
    "full_convolve2d",
    "grad_input_full_convolution",
    "grad_input_rotated_correlation",
    "grad_weight_correlation",
    "pad2d",
    "rot180",
    "swap_group_channels",
    "true_convolve2d",
]

Pair = tuple[int, int]


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis: floor((size + 2p - d(k - 1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def rot180(kernel: np.ndarray) -> np.ndarray:
    """Rotate the last two axes by 180 degrees: k[..., p, q] -> k[..., kh-1-p, kw-1-q]."""
    return np.flip(kernel, axis=(-2, -1))


def pad2d(x: np.ndarray, padding: Pair) -> np.ndarray:
    """Zero-pad the last two axes of (..., H, W) by (ph, pw) on each side -> (..., H+2ph, W+2pw)."""
    ph, pw = padding
    widths = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    return np.pad(x, widths)


def dilate2d(y: np.ndarray, factor: Pair) -> np.ndarray:
    """Insert (factor - 1) zeros between neighbouring elements of the last two axes.

    (..., Ho, Wo) -> (..., (Ho - 1) fh + 1, (Wo - 1) fw + 1). Used on dY for stride > 1: output
    row i was computed from the window starting at padded input row i * sh.
    """
    fh, fw = factor
    *lead, rows, cols = y.shape
    out = np.zeros((*lead, (rows - 1) * fh + 1, (cols - 1) * fw + 1), dtype=y.dtype)
    out[..., ::fh, ::fw] = y
    return out


def swap_group_channels(weight: np.ndarray, groups: int) -> np.ndarray:
    """Exchange the in/out channel roles of a grouped weight: (F, C/g, kh, kw) -> (C, F/g, kh, kw).

    The input gradient maps output channels back to input channels, so within each group the
    weight matrix is transposed (as conv_transpose2d reads it).
    """
    filters, group_channels, kh, kw = weight.shape
    grouped = weight.reshape(groups, filters // groups, group_channels, kh, kw)
    return grouped.transpose(0, 2, 1, 3, 4).reshape(groups * group_channels, filters // groups, kh, kw)


def cross_correlate2d(
    x: np.ndarray,
    weight: np.ndarray,
    *,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """Cross-correlation, torch's conv2d without bias.

    y[n, f, i, j] = Σ_{c, p, q} x̃[n, g(f) C/g + c, i sh + p dh, j sw + q dw] W[f, c, p, q]
    where x̃ is x zero-padded and g(f) the group of filter f.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (F, C/groups, kh, kw)

    Returns
    -------
    ndarray of shape (N, F, Ho, Wo), Ho = floor((H + 2ph - dh(kh-1) - 1) / sh) + 1.
    """
    (sh, sw), (dh, dw) = stride, dilation
    padded = pad2d(x, padding)
    batch, channels = padded.shape[:2]
    filters, group_channels, kh, kw = weight.shape
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    # (N, C, Ho, Wo, kh, kw): every strided window start, sampled at the dilated taps
    windows = sliding_window_view(padded, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    out_h, out_w = windows.shape[2:4]
    windows = windows.reshape(batch, groups, group_channels, out_h, out_w, kh, kw)
    grouped_weight = weight.reshape(groups, filters // groups, group_channels, kh, kw)
    out = np.einsum("ngchwpq,gfcpq->ngfhw", windows, grouped_weight, optimize=True)
    return out.reshape(batch, filters, out_h, out_w)


def full_convolve2d(
    x: np.ndarray, weight: np.ndarray, *, dilation: Pair = (1, 1), groups: int = 1
) -> np.ndarray:
    """Full textbook convolution: every input pixel is spread over the output by the kernel.

    full[n, f, u, v] = Σ_{c, p, q} x[n, g(f) C/g + c, u - p dh, v - q dw] W[f, c, p, q]
    (terms with an index outside x are zero).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (F, C/groups, kh, kw)

    Returns
    -------
    ndarray of shape (N, F, H + dh(kh-1), W + dw(kw-1)).
    """
    dh, dw = dilation
    batch, channels, height, width = x.shape
    filters, group_channels, kh, kw = weight.shape
    grouped_x = x.reshape(batch, groups, group_channels, height, width)
    grouped_weight = weight.reshape(groups, filters // groups, group_channels, kh, kw)
    dtype = np.result_type(x, weight)
    full = np.zeros((batch, groups, filters // groups, height + dh * (kh - 1), width + dw * (kw - 1)), dtype)
    for p in range(kh):
        for q in range(kw):
            # input pixel u lands on output u + p dh with weight W[p, q]: the index m - u of x[u] k[m - u]
            contribution = np.einsum("ngchw,gfc->ngfhw", grouped_x, grouped_weight[..., p, q])
            full[..., p * dh : p * dh + height, q * dw : q * dw + width] += contribution
    return full.reshape(batch, filters, *full.shape[-2:])


def true_convolve2d(
    x: np.ndarray,
    weight: np.ndarray,
    *,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """True ("valid") convolution: the full convolution of the padded input, kept where the kernel
    lies entirely inside, sampled every stride.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (F, C/groups, kh, kw)

    Returns
    -------
    ndarray of shape (N, F, Ho, Wo), with the same Ho, Wo as ``cross_correlate2d``.
    """
    padded = pad2d(x, padding)
    full = full_convolve2d(padded, weight, dilation=dilation, groups=groups)
    kh, kw = weight.shape[-2:]
    first_h, first_w = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
    height, width = padded.shape[-2:]
    return full[..., first_h:height : stride[0], first_w:width : stride[1]]


def fit_to_padded_input(
    grad_padded: np.ndarray, input_hw: Pair, padding: Pair
) -> np.ndarray:
    """Crop or zero-extend a gradient w.r.t. the padded input to (Hp, Wp), then drop the padding.

    Trailing rows/columns that no window reached (when (Hp - dh(kh-1) - 1) is not a multiple of
    the stride) get a zero gradient; the padded border is not part of x.

    Returns
    -------
    ndarray of shape (N, C, H, W).
    """
    (height, width), (ph, pw) = input_hw, padding
    padded_h, padded_w = height + 2 * ph, width + 2 * pw
    fitted = np.zeros((*grad_padded.shape[:-2], padded_h, padded_w), dtype=grad_padded.dtype)
    keep_h, keep_w = min(padded_h, grad_padded.shape[-2]), min(padded_w, grad_padded.shape[-1])
    fitted[..., :keep_h, :keep_w] = grad_padded[..., :keep_h, :keep_w]
    return fitted[..., ph : ph + height, pw : pw + width]


def grad_input_full_convolution(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_hw: Pair,
    *,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    groups: int = 1,
    dilate_grad_output: bool = True,
) -> np.ndarray:
    """dX as the full convolution of the stride-dilated dY with the kernel.

    dX̃ = dil_s(dY) ∗_full W (channels swapped within groups), fitted to the padded input, padding
    dropped. ``dilate_grad_output=False`` leaves out the zero insertion (a wrong variant for
    stride > 1).

    Parameters
    ----------
    grad_output : ndarray of shape (N, F, Ho, Wo)
    weight : ndarray of shape (F, C/groups, kh, kw)
    input_hw : (H, W) of the input

    Returns
    -------
    ndarray of shape (N, C, H, W).
    """
    spread = dilate2d(grad_output, stride) if dilate_grad_output else grad_output
    kernel = swap_group_channels(weight, groups)
    full = full_convolve2d(spread, kernel, dilation=dilation, groups=groups)
    return fit_to_padded_input(full, input_hw, padding)


def grad_input_rotated_correlation(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_hw: Pair,
    *,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    groups: int = 1,
    rotate: bool = True,
) -> np.ndarray:
    """dX as the cross-correlation of the zero-padded, stride-dilated dY with rot180 W.

    dX̃ = pad_{d(k-1)}(dil_s(dY)) ⋆ rot180(W) (channels swapped within groups), fitted to the padded
    input, padding dropped. ``rotate=False`` leaves out the rotation (a wrong variant).

    Parameters
    ----------
    grad_output : ndarray of shape (N, F, Ho, Wo)
    weight : ndarray of shape (F, C/groups, kh, kw)
    input_hw : (H, W) of the input

    Returns
    -------
    ndarray of shape (N, C, H, W).
    """
    kh, kw = weight.shape[-2:]
    border = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))
    padded = pad2d(dilate2d(grad_output, stride), border)
    kernel = swap_group_channels(weight, groups)
    if rotate:
        kernel = rot180(kernel)
    correlated = cross_correlate2d(padded, kernel, dilation=dilation, groups=groups)
    return fit_to_padded_input(correlated, input_hw, padding)


def grad_weight_correlation(
    x: np.ndarray,
    grad_output: np.ndarray,
    kernel_hw: Pair,
    *,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """dW as the cross-correlation of the padded input with dY, stride and dilation swapped.

    dW[f, c, p, q] = Σ_{n, i, j} x̃[n, g(f) C/g + c, i sh + p dh, j sw + q dw] dY[n, f, i, j]:
    dY is the kernel (dilated by the forward's stride), the batch is the summed channel axis, and
    the window moves by the forward's dilation. The result is cropped to (kh, kw) (a few extra
    positions exist when the last windows did not reach the end of the padded input).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    grad_output : ndarray of shape (N, F, Ho, Wo)
    kernel_hw : (kh, kw)

    Returns
    -------
    ndarray of shape (F, C/groups, kh, kw).
    """
    kh, kw = kernel_hw
    padded = pad2d(x, padding)
    channels, filters = x.shape[1], grad_output.shape[1]
    group_channels, group_filters = channels // groups, filters // groups
    blocks = []
    for group in range(groups):  # one small correlation per group: channels never mix across groups
        inputs = padded[:, group * group_channels : (group + 1) * group_channels].transpose(1, 0, 2, 3)
        kernels = grad_output[:, group * group_filters : (group + 1) * group_filters].transpose(1, 0, 2, 3)
        correlated = cross_correlate2d(inputs, kernels, stride=dilation, dilation=stride)
        blocks.append(correlated[:, :, :kh, :kw].transpose(1, 0, 2, 3))
    return np.concatenate(blocks, axis=0)
