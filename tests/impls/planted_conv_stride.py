"""conv2d whose grad_input forgets to dilate the upstream gradient by the stride.

Wrong only when stride != 1 (and that axis has more than one output), and only in grad_input.
"""
from __future__ import annotations

from conv_parts import make_conv2d

__all__ = ["conv2d_backward", "conv2d_forward"]

conv2d_forward, conv2d_backward = make_conv2d(dilate_upstream=False)
