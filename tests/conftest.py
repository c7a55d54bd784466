"""Test-wide settings: torch on one thread (tiny tensors are slower with a thread pool on 2 cores)."""
from __future__ import annotations

import torch

torch.set_num_threads(1)
