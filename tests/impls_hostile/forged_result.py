"""Hostile: replaces refcheck's worker-side case runner so that what its worker sends back for
relu's one-dimensional cases is not shaped as a result (_HOW, written by a test: a number where
the time belongs, a list where the tensors belong, a status refcheck does not know, or a value
whose pickle raises ValueError when read). Its relu is right; every other case is sent as run."""
import numpy as np

import refcheck.execution.worker as _worker

_HOW = "seconds"


class _RaisesWhenRead:
    def __reduce__(self):
        return int, ("not a number",)


_run = _worker.run_implementation


def _forged(reference, case, **options):
    raw = _run(reference, case, **options)
    if len(case.shape_map["input"]) != 1:
        return raw
    if _HOW == "seconds":
        raw["user_seconds"] = "fast"
    elif _HOW == "results":
        raw["results"] = [raw["results"]]
    elif _HOW == "status":
        raw["status"] = "passed"
    elif _HOW == "unreadable":
        raw["results"]["output"] = _RaisesWhenRead()
    return raw


_worker.run_implementation = _forged


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
