"""Hostile: replaces refcheck's worker-side conversion of results, so that what its worker sends
back would run ``os.makedirs`` in whichever process unpickles it (the trusted side, if it
unpickled the workers' messages freely). The directory it would make is named beside this file."""
import os

import numpy as np

import refcheck.execution.worker as _worker

_MARKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "made_by_the_payload")


class _Payload:
    def __reduce__(self):
        return os.makedirs, (_MARKER,)


_worker.plain = lambda value: _Payload()


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
