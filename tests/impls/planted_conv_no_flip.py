"""conv2d whose grad_input correlates with the kernel as it is, not rotated by 180 degrees.

Wrong only for kernels larger than 1x1, and only in grad_input (output and grad_weight are right).
"""
from __future__ import annotations

from conv_parts import make_conv2d

__all__ = ["conv2d_backward", "conv2d_forward"]

conv2d_forward, conv2d_backward = make_conv2d(flip_kernel=False)
