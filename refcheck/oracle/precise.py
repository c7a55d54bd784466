"""Float64 references free of cancellation, for layers whose torch float64 kernel cancels.

torch evaluates GELU as ``0.5 x (1 + erf(x / sqrt 2))`` and, with ``approximate='tanh'``,
``0.5 x (1 + tanh(u))``: where ``x`` is a few units below zero, ``1 + erf`` and ``1 + tanh`` cancel
and torch's float64 result keeps only some of its digits (thousands of float64 epsilons on an
input of one element near -4). The reference computes the same functions without the
cancellation (``erfc``; ``1 + tanh(u) = 2 sigmoid(2u)``), with torch.autograd for the gradients;
torch's own result at the case's dtype, float64 included, is still ``torch.nn.functional.gelu``,
so its error shows next to the implementation's. tanh's and sigmoid's derivatives, ``1 - y**2``
and ``y (1 - y)`` from the output ``y``, cancel the same way where ``|y|`` nears 1: the reference
computes them from the input (``1 / cosh(x)**2``, ``sigmoid(x) sigmoid(-x)``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["PRECISE"]

_KAPPA = 0.044715


def _gelu(input: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (input + _KAPPA * input * input * input)
        return input * torch.sigmoid(2.0 * inner)
    return input * 0.5 * torch.special.erfc(-input * math.sqrt(0.5))


class _Tanh(torch.autograd.Function):
    """torch.tanh, with the derivative ``1 / cosh(x)**2`` (torch's ``1 - tanh(x)**2`` cancels near |x| = 5)."""

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(input)
        return torch.tanh(input)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (input,) = ctx.saved_tensors
        sech = 1.0 / torch.cosh(input)
        return grad * sech * sech


class _Sigmoid(torch.autograd.Function):
    """torch.sigmoid, with the derivative ``sigmoid(x) sigmoid(-x)`` (torch's ``y (1 - y)`` cancels where y ~ 1)."""

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(input)
        return torch.sigmoid(input)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (input,) = ctx.saved_tensors
        return grad * torch.sigmoid(input) * torch.sigmoid(-input)


PRECISE: dict[str, Callable[..., Any]] = {"gelu": _gelu, "tanh": _Tanh.apply, "sigmoid": _Sigmoid.apply}
"""The float64 reference's function, by layer, where it is not torch's own function."""
