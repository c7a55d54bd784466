"""torch calls for the loss layers whose torch signature differs from the contract."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["multi_margin_loss"]


def multi_margin_loss(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, *,
                      reduction: str, p: int, margin: float) -> torch.Tensor:
    """F.multi_margin_loss takes weight after p and margin; the contract passes it third, as a tensor."""
    return F.multi_margin_loss(input, target, p=p, margin=margin, weight=weight, reduction=reduction)
