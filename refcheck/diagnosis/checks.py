"""Which checks apply to which layer, in the order they are tried."""
from __future__ import annotations

from .activations import ACTIVATION_CHECKS, ACTIVATION_LAYERS
from .context import Check
from .conv import CONV2D_CHECKS
from .conv_nd import CONV_ND_CHECKS
from .dense import LINEAR_CHECKS
from .generic import float32_arithmetic
from .losses import LOSS_CHECKS
from .losses_weighted import WEIGHTED_LOSS_CHECKS
from .masks import DROPOUT_CHECKS, EMBEDDING_CHECKS
from .norm import NORM_CHECKS
from .optim import OPTIM_CHECKS
from .pooling import POOLING_CHECKS
from .pooling1d import POOLING1D_CHECKS
from .sequence import SEQUENCE_CHECKS

__all__ = ["checks_for"]

_GENERIC: list[tuple[tuple[str, ...], Check]] = [
    (("output", "grad_input", "grad_weight", "grad_bias"), float32_arithmetic),
]


_WEIGHTED_LOSSES = ("binary_cross_entropy", "cross_entropy", "nll_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                    "kl_div", "multi_margin_loss")


def checks_for(layer: str) -> list[tuple[tuple[str, ...], Check]]:
    """The checks relevant to a layer, in the order they are tried: (tensors each applies to, check)."""
    if layer == "conv2d":
        return CONV2D_CHECKS
    if layer in ("conv1d", "conv3d", "conv_transpose2d"):
        return CONV_ND_CHECKS
    if layer in ("batch_norm", "layer_norm", "group_norm", "instance_norm"):
        return NORM_CHECKS
    if layer in ("dropout", "embedding"):
        return DROPOUT_CHECKS if layer == "dropout" else EMBEDDING_CHECKS
    if layer == "linear":
        return LINEAR_CHECKS
    if layer in ("sgd", "rmsprop", "adam", "adamw"):
        return OPTIM_CHECKS
    if layer in POOLING_CHECKS:
        return POOLING_CHECKS[layer]
    if layer in POOLING1D_CHECKS:
        return POOLING1D_CHECKS[layer]
    if layer in SEQUENCE_CHECKS:
        return SEQUENCE_CHECKS[layer]
    if layer in ("mse_loss", "binary_cross_entropy_with_logits"):
        return LOSS_CHECKS
    if layer in _WEIGHTED_LOSSES:
        return WEIGHTED_LOSS_CHECKS
    if layer in ACTIVATION_LAYERS:
        return ACTIVATION_CHECKS
    return _GENERIC
