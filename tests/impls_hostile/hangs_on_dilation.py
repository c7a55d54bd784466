"""conv2d that never returns when dilation is (2, 2); correct otherwise."""
from __future__ import annotations

import time

from refcheck.layers import conv2d_backward
from refcheck.layers import conv2d_forward as _forward

__all__ = ["conv2d_backward", "conv2d_forward"]


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    if tuple(dilation) == (2, 2):
        while True:
            time.sleep(1)
    return _forward(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
