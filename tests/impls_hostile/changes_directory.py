"""relu that changes the working directory on every call; otherwise correct."""
from __future__ import annotations

import os
import tempfile

from refcheck.layers import relu_backward
from refcheck.layers import relu_forward as _forward

__all__ = ["relu_backward", "relu_forward"]


def relu_forward(x):
    os.chdir(tempfile.gettempdir())
    return _forward(x)
