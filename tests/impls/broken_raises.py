"""relu and conv2d that raise on some configurations: in forward for some, in backward for others.

relu_forward raises ValueError for 1-d inputs; relu_backward raises RuntimeError for 4-d inputs;
conv2d_backward raises NotImplementedError for groups > 1. Everything else is the built-in layer.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from refcheck import layers

__all__ = ["conv2d_backward", "conv2d_forward", "relu_backward", "relu_forward"]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relu of a batch (N, ...); a 1-d input is refused."""
    if x.ndim == 1:
        raise ValueError(f"relu_forward expects a batch of activations, got shape {x.shape}")
    return layers.relu_forward(x)


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """grad_input of relu; refuses 4-d activations."""
    if cache.ndim == 4:
        raise RuntimeError("relu_backward has no channel-wise path for 4-d activations")
    return layers.relu_backward(dout, cache)


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, *, stride: tuple[int, int],
                   padding: str | tuple[int, int], dilation: tuple[int, int], groups: int) -> tuple[np.ndarray, Any]:
    """The built-in conv2d forward: (N, C, H, W) -> (N, F, OH, OW)."""
    out, cache = layers.conv2d_forward(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                                       groups=groups)
    return out, (cache, groups)


def conv2d_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The built-in conv2d backward, refused for grouped convolutions."""
    inner, groups = cache
    if groups > 1:
        raise NotImplementedError(f"grouped conv2d backward (groups={groups}) is not written yet")
    return layers.conv2d_backward(dout, inner)
