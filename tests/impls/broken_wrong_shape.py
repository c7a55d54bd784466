"""conv2d whose grad_weight is not cropped to the kernel size.

When the padded input is longer than the last strided window needs (stride > 1 with leftover
rows or columns), grad_weight comes back as (F, C/groups, kh + 1, ...) instead of the kernel's shape.
"""
from __future__ import annotations

from conv_parts import make_conv2d

__all__ = ["conv2d_backward", "conv2d_forward"]

conv2d_forward, conv2d_backward = make_conv2d(crop_weight_grad=False)
