"""relu with a forward and no backward."""
from __future__ import annotations

import numpy as np


def relu_forward(x):
    return np.maximum(x, 0), None
