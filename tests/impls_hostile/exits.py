"""relu whose forward leaves in a different way per input shape and dtype: sys.exit(0),
KeyboardInterrupt, GeneratorExit, os._exit(0); the other inputs are correct."""
from __future__ import annotations

import os
import sys

from refcheck.layers import relu_backward
from refcheck.layers import relu_forward as _forward

__all__ = ["relu_backward", "relu_forward"]

# Only float32 inputs trigger it: the self-check calls forward in float64.
BEHAVIOUR = {((4, 5), "float32"): "sys.exit", ((7,), "float32"): "KeyboardInterrupt",
             ((2, 3, 4, 4), "float32"): "GeneratorExit", ((2, 3, 4, 4), "float64"): "os._exit"}


def relu_forward(x):
    what = BEHAVIOUR.get((x.shape, str(x.dtype)))
    if what == "sys.exit":
        sys.exit(0)
    if what == "KeyboardInterrupt":
        raise KeyboardInterrupt
    if what == "GeneratorExit":
        raise GeneratorExit
    if what == "os._exit":
        os._exit(0)
    return _forward(x)
