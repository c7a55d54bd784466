"""A probe, not a layer: conv2d computes the right answer itself, then searches its whole process
(every object the garbage collector tracks, every stack frame) for another array equal to it, and
appends how many it found to the file beside it named like it, with the suffix .log."""
from __future__ import annotations

import gc
import os
import sys

import numpy as np

from refcheck.layers import conv2d_backward as _backward
from refcheck.layers import conv2d_forward as _forward


def _arrays():
    for value in gc.get_objects():
        if isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, dict):
            yield from (v for v in value.values() if isinstance(v, np.ndarray))
        elif isinstance(value, (list, tuple)):
            yield from (v for v in value if isinstance(v, np.ndarray))
    frame = sys._getframe()
    while frame is not None:
        yield from (v for v in frame.f_locals.values() if isinstance(v, np.ndarray))
        frame = frame.f_back


def _count_copies(mine: list[np.ndarray]) -> int:
    own = {id(a) for a in mine}
    found = 0
    for array in _arrays():
        if id(array) in own:
            continue
        for target in mine:
            if target is not None and array.shape == target.shape and array.size > 1 and np.allclose(array, target):
                found += 1
    return found


def _report(count: int) -> None:
    with open(os.path.splitext(__file__)[0] + ".log", "a", encoding="utf-8") as log:
        log.write(f"{count}\n")


def conv2d_forward(x, weight, bias, **hparams):
    out, cache = _forward(x, weight, bias, **hparams)
    _report(_count_copies([out]))
    return out, cache


def conv2d_backward(dout, cache):
    grads = _backward(dout, cache)
    _report(_count_copies([g for g in grads if g is not None]))
    return grads
