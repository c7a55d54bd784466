"""conv2d without the ``dilation`` and ``groups`` keywords (the only layer this module provides).

Correct for dilation (1, 1) and groups 1; refcheck must skip every other case as unsupported
instead of calling forward with keywords it does not take, and list the other layers as not
implemented.
"""
from __future__ import annotations

import numpy as np

from refcheck.layers import conv2d_backward
from refcheck.layers import conv2d_forward as _full_conv2d_forward

__all__ = ["conv2d_backward", "conv2d_forward"]


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, *,
                   stride: tuple[int, int], padding: str | tuple[int, int]) -> tuple[np.ndarray, object]:
    """conv2d of x (N, C, H, W) with weight (C_out, C, kh, kw), no dilation, one group."""
    return _full_conv2d_forward(x, weight, bias, stride=stride, padding=padding, dilation=(1, 1), groups=1)
