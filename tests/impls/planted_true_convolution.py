"""conv2d as a true convolution (kernel rotated by 180 degrees) with the matching backward.

Consistent with itself, so refcheck's self-check finds nothing, but it is not torch's
cross-correlation: output, grad_input and grad_weight disagree with torch for kernels > 1x1.
"""
from __future__ import annotations

from conv_parts import make_conv2d

__all__ = ["conv2d_backward", "conv2d_forward"]

conv2d_forward, conv2d_backward = make_conv2d(true_convolution=True)
