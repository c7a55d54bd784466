"""Pooling gradient rules, each written in numpy and checked against torch.autograd.

- max pooling: dY goes to the FIRST maximum of each window in row-major order (ties), padding is
  -inf, and overlapping windows accumulate;
- average pooling: dY / divisor goes to every window element; the divisor is the window clipped to
  the padded input (count_include_pad=True) or to the input itself (False), and ceil_mode adds
  windows that hang over the end;
- L2 pooling (lp_pool2d, norm_type=2): y = sqrt(Σ x²), so dX = dY · x / y on each window.

Output size per axis (torch): Ho = floor((H + 2p - k + (s - 1 if ceil_mode)) / s) + 1, reduced by
one when ceil_mode makes the last window start beyond H + p.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view

from ._threads import single_threaded
from .formulas import Pair
from .identities import HOLDS_TOLERANCE, max_abs_error

__all__ = [
    "PoolingDemo",
    "avg_pool_divisors",
    "avg_pool_rule",
    "lp2_pool_rule",
    "max_pool_first_max_rule",
    "pool_output_size",
    "pooling_demos",
]


@dataclass(frozen=True)
class PoolingDemo:
    """One rule on one small 2-d input: the numpy rule's output and dX next to torch's."""

    rule: str
    setting: str
    x: np.ndarray
    grad_output: np.ndarray
    output: np.ndarray
    grad_input: np.ndarray
    torch_output: np.ndarray
    torch_grad_input: np.ndarray
    notes: tuple[str, ...] = ()
    details: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def max_abs_error(self) -> float:
        """Largest difference of output or dX from torch."""
        return max(max_abs_error(self.output, self.torch_output), max_abs_error(self.grad_input, self.torch_grad_input))

    @property
    def holds(self) -> bool:
        """The numpy rule reproduces torch (float64 rounding only)."""
        return self.max_abs_error <= HOLDS_TOLERANCE


def pool_output_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """torch's pooling output length along one axis (see the module docstring)."""
    numerator = size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding only
    return out


def _padded_windows(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair,
                    fill: float) -> tuple[np.ndarray, Pair]:
    """Windows (N, C, Ho, Wo, kh, kw) of x padded with ``fill``, extended for ceil_mode windows."""
    (kh, kw), (sh, sw), (ph, pw), (out_h, out_w) = kernel, stride, padding, out_hw
    height, width = x.shape[-2:]
    extent = (max((out_h - 1) * sh + kh, ph + height), max((out_w - 1) * sw + kw, pw + width))
    padded = np.full((*x.shape[:-2], *extent), fill, dtype=x.dtype)
    padded[..., ph : ph + height, pw : pw + width] = x
    windows = sliding_window_view(padded, kernel, axis=(-2, -1))[..., ::sh, ::sw, :, :]
    return windows[..., :out_h, :out_w, :, :], extent


def _scatter_windows(per_tap: np.ndarray, x_shape: tuple[int, ...], stride: Pair, padding: Pair,
                     extent: Pair) -> np.ndarray:
    """Add per_tap[..., i, j, p, q] into position (i s + p, j s + q) of the padded frame; crop to x."""
    out_h, out_w, kh, kw = per_tap.shape[-4:]
    (sh, sw), (ph, pw) = stride, padding
    frame = np.zeros((*x_shape[:-2], *extent), dtype=per_tap.dtype)
    for p in range(kh):  # a loop over taps only; overlapping windows accumulate through +=
        for q in range(kw):
            frame[..., p : p + (out_h - 1) * sh + 1 : sh, q : q + (out_w - 1) * sw + 1 : sw] += per_tap[..., p, q]
    return frame[..., ph : ph + x_shape[-2], pw : pw + x_shape[-1]]


def max_pool_first_max_rule(
    x: np.ndarray, grad_output: np.ndarray, *, kernel: Pair, stride: Pair, padding: Pair = (0, 0),
    ceil_mode: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Max pooling forward and backward with torch's tie rule.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    grad_output : ndarray of shape (N, C, Ho, Wo)

    Returns
    -------
    (output (N, C, Ho, Wo), grad_input (N, C, H, W), first_max (N, C, Ho, Wo) flat tap index).
    """
    out_hw = tuple(pool_output_size(x.shape[-2 + a], kernel[a], stride[a], padding[a], ceil_mode) for a in range(2))
    windows, extent = _padded_windows(x, kernel, stride, padding, out_hw, fill=-np.inf)
    flat = windows.reshape(*windows.shape[:-2], kernel[0] * kernel[1])
    first_max = flat.argmax(axis=-1)  # numpy's argmax returns the first occurrence: torch's choice
    output = np.take_along_axis(flat, first_max[..., None], axis=-1)[..., 0]
    one_hot = (np.arange(flat.shape[-1]) == first_max[..., None]) * grad_output[..., None]
    grad_input = _scatter_windows(one_hot.reshape(windows.shape), x.shape, stride, padding, extent)
    return output, grad_input, first_max


def avg_pool_divisors(input_hw: Pair, *, kernel: Pair, stride: Pair, padding: Pair, ceil_mode: bool,
                      count_include_pad: bool) -> np.ndarray:
    """torch's divisor for every average-pooling window, shape (Ho, Wo).

    A window [start, start + k) is first clipped to the padded input [-p, H + p); with
    count_include_pad=False it is clipped further to the input [0, H).
    """
    sizes = []
    for axis in range(2):
        size, k, s, p = input_hw[axis], kernel[axis], stride[axis], padding[axis]
        starts = np.arange(pool_output_size(size, k, s, p, ceil_mode)) * s - p
        ends = np.minimum(starts + k, size + p)
        inside = np.minimum(ends, size) - np.maximum(starts, 0)
        sizes.append(ends - starts if count_include_pad else inside)
    return np.outer(sizes[0], sizes[1]).astype(np.float64)


def avg_pool_rule(x: np.ndarray, grad_output: np.ndarray, *, kernel: Pair, stride: Pair, padding: Pair,
                  ceil_mode: bool, count_include_pad: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average pooling forward and backward: every window element receives dY / divisor.

    Returns
    -------
    (output (N, C, Ho, Wo), grad_input (N, C, H, W), divisor (Ho, Wo)).
    """
    divisor = avg_pool_divisors(x.shape[-2:], kernel=kernel, stride=stride, padding=padding,
                                ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    windows, extent = _padded_windows(x, kernel, stride, padding, divisor.shape, fill=0.0)
    output = windows.sum(axis=(-2, -1)) / divisor
    share = np.broadcast_to((grad_output / divisor)[..., None, None], windows.shape)
    return output, _scatter_windows(share, x.shape, stride, padding, extent), divisor


def lp2_pool_rule(
    x: np.ndarray, grad_output: np.ndarray, *, kernel: Pair, stride: Pair
) -> tuple[np.ndarray, np.ndarray]:
    """L2 pooling (lp_pool2d with norm_type=2, no padding): y = sqrt(Σ_window x²), dX = dY · x / y.

    Returns
    -------
    (output (N, C, Ho, Wo), grad_input (N, C, H, W)).
    """
    out_hw = tuple(pool_output_size(x.shape[-2 + a], kernel[a], stride[a], 0, False) for a in range(2))
    windows, extent = _padded_windows(x, kernel, stride, (0, 0), out_hw, fill=0.0)
    output = np.sqrt((windows**2).sum(axis=(-2, -1)))
    per_tap = (grad_output / output)[..., None, None] * windows
    return output, _scatter_windows(per_tap, x.shape, stride, (0, 0), extent)


def _torch_pool(pool, x: np.ndarray, grad_output: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    x_t = torch.tensor(x, requires_grad=True)
    with single_threaded():
        out_t = pool(x_t, **kwargs)
        out_t.backward(torch.tensor(grad_output))
    return out_t.detach().numpy(), x_t.grad.numpy()


def _name(row: int, col: int) -> str:
    return f"X{row + 1}{col + 1}"


def _tie_notes(windows_2d: np.ndarray, first_max: np.ndarray, stride: Pair, padding: Pair) -> tuple[str, ...]:
    """Describe every window whose maximum occurs more than once, and where dY went."""
    kh, kw = windows_2d.shape[-2:]
    notes = []
    for i, j in zip(*np.nonzero((windows_2d == windows_2d.max(axis=(-2, -1), keepdims=True)).sum(axis=(-2, -1)) > 1)):
        taps = np.argwhere(windows_2d[i, j] == windows_2d[i, j].max())
        positions = [_name(i * stride[0] + p - padding[0], j * stride[1] + q - padding[1]) for p, q in taps]
        tap_row, tap_col = divmod(int(first_max[i, j]), kw)
        chosen = _name(i * stride[0] + tap_row - padding[0], j * stride[1] + tap_col - padding[1])
        notes.append(f"window ({i + 1},{j + 1}): maximum {windows_2d[i, j].max():g} at {', '.join(positions)}; "
                     f"dY{i + 1}{j + 1} goes to {chosen} only")
    return tuple(notes)


def _max_demo(setting: str, x: np.ndarray, grad_output: np.ndarray, kernel: Pair, stride: Pair,
              padding: Pair) -> PoolingDemo:
    x4, dy4 = x[None, None], grad_output[None, None]
    output, grad_input, first_max = max_pool_first_max_rule(x4, dy4, kernel=kernel, stride=stride, padding=padding)
    torch_out, torch_grad = _torch_pool(F.max_pool2d, x4, dy4, kernel_size=kernel, stride=stride, padding=padding)
    out_hw = output.shape[-2:]
    windows, _ = _padded_windows(x4, kernel, stride, padding, out_hw, fill=-np.inf)
    # routing a dY of ones counts how many windows send their gradient to each input position
    _, routed, _ = max_pool_first_max_rule(x4, np.ones_like(dy4), kernel=kernel, stride=stride, padding=padding)
    shared = [f"{_name(r, c)} ← {int(routed[0, 0, r, c])} windows" for r, c in np.argwhere(routed[0, 0] > 1)]
    notes = _tie_notes(windows[0, 0], first_max[0, 0], stride, padding)
    if shared:
        notes += ("accumulated (overlapping windows): " + ", ".join(shared),)
    return PoolingDemo("max pooling: dY to the first maximum", setting, x, grad_output, output[0, 0], grad_input[0, 0],
                       torch_out[0, 0], torch_grad[0, 0], notes, {"windows_routed_here": routed[0, 0]})


def _avg_demo(setting: str, x: np.ndarray, grad_output: np.ndarray, kernel: Pair, stride: Pair, padding: Pair,
              ceil_mode: bool, count_include_pad: bool, remark: str) -> PoolingDemo:
    x4, dy4 = x[None, None], grad_output[None, None]
    hyper = {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode,
             "count_include_pad": count_include_pad}
    output, grad_input, divisor = avg_pool_rule(x4, dy4, **hyper)
    torch_out, torch_grad = _torch_pool(F.avg_pool2d, x4, dy4, kernel_size=kernel, stride=stride, padding=padding,
                                        ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    values = ", ".join(f"{v:g}" for v in np.unique(divisor))
    notes = (remark, f"divisors used: {values} (kernel {kernel[0]}×{kernel[1]} = {kernel[0] * kernel[1]})")
    return PoolingDemo("average pooling: dY / divisor to each element", setting, x, grad_output, output[0, 0],
                       grad_input[0, 0], torch_out[0, 0], torch_grad[0, 0], notes, {"divisor": divisor})


def pooling_demos(seed: int = 0) -> list[PoolingDemo]:
    """All pooling demonstrations, float64, small integer inputs, random integer dY (never all ones)."""
    rng = np.random.default_rng(seed)

    def grad_like(shape: Pair) -> np.ndarray:
        return rng.integers(1, 6, size=shape).astype(np.float64) * rng.choice([-1.0, 1.0], size=shape)

    tied = np.array([[3, 1, 5, 5], [3, 2, 5, 5], [0, 4, 1, 7], [4, 2, 7, 6]], dtype=np.float64)
    negative = -rng.integers(1, 9, size=(5, 5)).astype(np.float64)  # all < 0: the -inf padding must never win
    five = rng.integers(-4, 5, size=(5, 5)).astype(np.float64)
    six = rng.integers(-4, 5, size=(6, 6)).astype(np.float64)
    nonzero = rng.integers(1, 5, size=(5, 5)).astype(np.float64) * rng.choice([-1.0, 1.0], size=(5, 5))

    demos = [
        _max_demo("kernel 2, stride 2 (windows with ties)", tied, grad_like((2, 2)), (2, 2), (2, 2), (0, 0)),
        _max_demo("kernel 3, stride 1, padding 1, negative inputs (overlapping windows accumulate)", negative,
                  grad_like((5, 5)), (3, 3), (1, 1), (1, 1)),
        _avg_demo("kernel 3, stride 2, padding 1, count_include_pad=True", five, grad_like((3, 3)), (3, 3), (2, 2),
                  (1, 1), False, True, "padded zeros count: border windows also divide by 9"),
        _avg_demo("kernel 3, stride 2, padding 1, count_include_pad=False", five, grad_like((3, 3)), (3, 3), (2, 2),
                  (1, 1), False, False, "only real inputs count: border windows divide by 6, corners by 4"),
        _avg_demo("kernel 3, stride 2, padding 1, ceil_mode=True, count_include_pad=True", six, grad_like((4, 4)),
                  (3, 3), (2, 2), (1, 1), True, True,
                  "ceil_mode adds a last window that hangs past the padded input; only its part inside "
                  "the padded input counts, so it divides by 6 (corner 4) although padding counts"),
        _avg_demo("kernel 2, stride 2, ceil_mode=True, count_include_pad=False", five, grad_like((3, 3)), (2, 2),
                  (2, 2), (0, 0), True, False,
                  "the extra ceil_mode window covers one column/row: divisor 2 (corner 1)"),
    ]
    dy = grad_like((2, 2))
    output, grad_input = lp2_pool_rule(nonzero[None, None], dy[None, None], kernel=(3, 3), stride=(2, 2))
    torch_out, torch_grad = _torch_pool(F.lp_pool2d, nonzero[None, None], dy[None, None], norm_type=2.0,
                                        kernel_size=(3, 3), stride=(2, 2))
    demos.append(PoolingDemo("L2 pooling (lp_pool2d, norm_type=2): dY · x / y", "kernel 3, stride 2 (windows overlap)",
                             nonzero, dy, output[0, 0], grad_input[0, 0], torch_out[0, 0], torch_grad[0, 0],
                             ("y = sqrt(Σ_window x²); the shared column/row receives the sum of both "
                              "windows' dY·x/y",)))
    return demos
