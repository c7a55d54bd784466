"""Hostile: a wrong conv2d that raises refcheck's own Unsupported on every case (to be skipped, not
failed), and a correct relu. _FORGED (a test sets it) raises it from code compiled under a file
name inside refcheck's package, as if an adapter had."""
import os

import numpy as np

import refcheck
from refcheck import Unsupported

_FORGED = False
_SOURCE = "def skip(what):\n    raise Unsupported(what + ' is not supported')\n"
_namespace = {"Unsupported": Unsupported}
exec(compile(_SOURCE, os.path.join(os.path.dirname(refcheck.__file__), "adapters", "contract.py") if _FORGED
             else __file__, "exec"), _namespace)


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, groups):
    _namespace["skip"]("conv2d")


def conv2d_backward(dout, cache):
    return None


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
