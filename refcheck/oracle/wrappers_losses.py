"""torch calls for the loss layers whose torch signature differs from the contract.

``variant`` (never set by the checking path) recomputes a classic mistake with torch's autograd,
for the diagnoses: ``smoothing_unweighted`` (cross_entropy's label-smoothing term without the
class weights).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cross_entropy", "multi_margin_loss"]


def multi_margin_loss(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, *,
                      reduction: str, p: int, margin: float) -> torch.Tensor:
    """F.multi_margin_loss takes weight after p and margin; the contract passes it third, as a tensor."""
    return F.multi_margin_loss(input, target, p=p, margin=margin, weight=weight, reduction=reduction)


def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, *, reduction: str,
                  ignore_index: int = -100, label_smoothing: float = 0.0, variant: str = "") -> torch.Tensor:
    """F.cross_entropy; with variant='smoothing_unweighted', the uniform part ignores the class weights."""
    if variant != "smoothing_unweighted" or weight is None or label_smoothing == 0:
        return F.cross_entropy(input, target, weight, reduction=reduction, ignore_index=ignore_index,
                               label_smoothing=label_smoothing)
    nll = F.cross_entropy(input, target, weight, reduction=reduction, ignore_index=ignore_index)
    class_axis = 0 if input.dim() == 1 else 1
    smooth = -torch.log_softmax(input, dim=class_axis).sum(dim=class_axis)
    kept = target != ignore_index
    smooth = torch.where(kept, smooth, torch.zeros_like(smooth))
    if reduction == "mean":
        smooth = smooth.sum() / weight[torch.where(kept, target, 0)][kept].sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    classes = input.shape[class_axis]
    return (1 - label_smoothing) * nll + label_smoothing / classes * smooth
