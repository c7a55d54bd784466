"""The 3x3 / 2x2 worked example: forward three ways, and every gradient entry written out.

X is 3x3, the filter F is 2x2, so the output O (and the upstream gradient dO) is 2x2. Entries are
named with 1-based indices as in the derivations they settle (X11 is the top-left element).
The symbolic gradient entries are derived by enumerating which output positions each input
position (or filter tap) contributes to, so they follow from the cross-correlation definition
O[i, j] = Σ_{p,q} X[i+p, j+q] F[p, q] and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._threads import single_threaded
from .formulas import cross_correlate2d, rot180, true_convolve2d

__all__ = ["GradientEntry", "WorkedExample", "worked_example"]

#: The fixed example: small integers, an asymmetric filter (so rot180 F differs from F) and a
#: non-constant dO (all ones would make several entries coincide whatever the rule).
EXAMPLE_INPUT = ((1.0, 2.0, 0.0), (-1.0, 3.0, 1.0), (2.0, 0.0, -2.0))
EXAMPLE_FILTER = ((1.0, 2.0), (3.0, 4.0))
EXAMPLE_GRAD_OUTPUT = ((1.0, -2.0), (3.0, 2.0))


@dataclass(frozen=True)
class GradientEntry:
    """One gradient entry, e.g. dX12 = F12 dO11 + F11 dO12.

    terms: ((factor name, factor value, dO name, dO value), ...) in row-major order of dO.
    value: the sum of the terms; autograd: torch.autograd's value of the same entry.
    """

    name: str
    expression: str
    terms: tuple[tuple[str, float, str, float], ...]
    value: float
    autograd: float

    @property
    def equation(self) -> str:
        """'dX12 = F12 dO11 + F11 dO12'."""
        return f"{self.name} = {self.expression}"

    @property
    def numeric(self) -> str:
        """The same sum with numbers: '2·1 + 1·(−2) = 0'."""
        parts = [f"{_fmt(a, paren=True)}·{_fmt(b, paren=True)}" for _, a, _, b in self.terms]
        return f"{' + '.join(parts)} = {_fmt(self.value)}"

    @property
    def matches_autograd(self) -> bool:
        """Exact agreement (small integers: no rounding involved)."""
        return self.value == self.autograd


@dataclass(frozen=True)
class WorkedExample:
    """All arrays of the example (2-d, float64) and the written-out gradient entries."""

    x: np.ndarray
    kernel: np.ndarray
    rotated_kernel: np.ndarray
    grad_output: np.ndarray
    cross_correlation: np.ndarray
    true_convolution: np.ndarray
    torch_conv2d: np.ndarray
    grad_input: np.ndarray
    grad_kernel: np.ndarray
    grad_input_entries: tuple[GradientEntry, ...]
    grad_kernel_entries: tuple[GradientEntry, ...]

    def entry(self, name: str) -> GradientEntry:
        """Look up 'dX22' or 'dF12'."""
        for entry in self.grad_input_entries + self.grad_kernel_entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    @property
    def torch_is_correlation(self) -> bool:
        """torch's conv2d output equals the cross-correlation exactly."""
        return bool(np.array_equal(self.torch_conv2d, self.cross_correlation))

    @property
    def torch_is_convolution(self) -> bool:
        """torch's conv2d output equals the true convolution exactly (it does not)."""
        return bool(np.array_equal(self.torch_conv2d, self.true_convolution))


def _fmt(value: float, paren: bool = False) -> str:
    text = f"{value:g}" if value != int(value) else str(int(value))
    return f"({text})" if paren and value < 0 else text


def _index(row: int, col: int) -> str:
    return f"{row + 1}{col + 1}"


def _grad_input_entries(kernel: np.ndarray, grad_output: np.ndarray, autograd: np.ndarray) -> tuple[GradientEntry, ...]:
    """dX[u, v] = Σ over outputs (i, j) whose window covers (u, v) of F[u−i, v−j] dO[i, j]."""
    (in_h, in_w), (out_h, out_w) = autograd.shape, grad_output.shape
    kh, kw = kernel.shape
    entries = []
    for u in range(in_h):
        for v in range(in_w):
            terms = tuple(
                (f"F{_index(u - i, v - j)}", float(kernel[u - i, v - j]), f"dO{_index(i, j)}", float(grad_output[i, j]))
                for i in range(out_h)
                for j in range(out_w)
                if 0 <= u - i < kh and 0 <= v - j < kw
            )
            entries.append(_entry(f"dX{_index(u, v)}", terms, float(autograd[u, v])))
    return tuple(entries)


def _grad_kernel_entries(x: np.ndarray, grad_output: np.ndarray, autograd: np.ndarray) -> tuple[GradientEntry, ...]:
    """dF[p, q] = Σ over outputs (i, j) of X[i+p, j+q] dO[i, j]: tap (p, q) meets X[i+p, j+q]."""
    out_h, out_w = grad_output.shape
    entries = []
    for p in range(autograd.shape[0]):
        for q in range(autograd.shape[1]):
            terms = tuple(
                (f"X{_index(i + p, j + q)}", float(x[i + p, j + q]), f"dO{_index(i, j)}", float(grad_output[i, j]))
                for i in range(out_h)
                for j in range(out_w)
            )
            entries.append(_entry(f"dF{_index(p, q)}", terms, float(autograd[p, q])))
    return tuple(entries)


def _entry(name: str, terms: tuple[tuple[str, float, str, float], ...], autograd: float) -> GradientEntry:
    expression = " + ".join(f"{factor} {grad}" for factor, _, grad, _ in terms)
    value = float(sum(a * b for _, a, _, b in terms))
    return GradientEntry(name, expression, terms, value, autograd)


def worked_example() -> WorkedExample:
    """Compute the example: correlation, convolution and torch side by side; all gradient entries.

    Returns
    -------
    WorkedExample with 2-d arrays: x (3, 3), kernel (2, 2), outputs and grad_output (2, 2),
    grad_input (3, 3) and grad_kernel (2, 2) from torch.autograd.
    """
    x = np.array(EXAMPLE_INPUT)
    kernel = np.array(EXAMPLE_FILTER)
    grad_output = np.array(EXAMPLE_GRAD_OUTPUT)
    as_4d = (None, None)

    x_t = torch.tensor(x[as_4d], requires_grad=True)
    kernel_t = torch.tensor(kernel[as_4d], requires_grad=True)
    with single_threaded():
        out_t = F.conv2d(x_t, kernel_t)
        out_t.backward(torch.tensor(grad_output[as_4d]))
    grad_input, grad_kernel = x_t.grad.numpy()[0, 0], kernel_t.grad.numpy()[0, 0]

    return WorkedExample(
        x=x,
        kernel=kernel,
        rotated_kernel=np.ascontiguousarray(rot180(kernel)),
        grad_output=grad_output,
        cross_correlation=cross_correlate2d(x[as_4d], kernel[as_4d])[0, 0],
        true_convolution=true_convolve2d(x[as_4d], kernel[as_4d])[0, 0],
        torch_conv2d=out_t.detach().numpy()[0, 0],
        grad_input=grad_input,
        grad_kernel=grad_kernel,
        grad_input_entries=_grad_input_entries(kernel, grad_output, grad_input),
        grad_kernel_entries=_grad_kernel_entries(x, grad_output, grad_kernel),
    )
