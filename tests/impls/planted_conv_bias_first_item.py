"""conv2d whose grad_bias sums over space but takes only the first batch item.

Wrong only for batches of more than one, and only in grad_bias.
"""
from __future__ import annotations

from conv_parts import make_conv2d

__all__ = ["conv2d_backward", "conv2d_forward"]

conv2d_forward, conv2d_backward = make_conv2d(sum_bias_over_batch=False)
