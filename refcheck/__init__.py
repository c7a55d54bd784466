"""refcheck: check hand-written numpy layers, forward and backward, against torch.autograd."""
from __future__ import annotations

__version__ = "0.1.0"
