"""Hostile: computes relu with torch, imported under a computed name and kept out of its
namespace, and switches off refcheck's own check in its worker (which runs in the same process)."""
import importlib

import numpy as np

import refcheck.execution.worker as _worker

_hidden = [importlib.import_module("to" + "rch")]
_worker.frameworks_used = lambda implementation: []


def relu_forward(x):
    out = _hidden[0].relu(_hidden[0].from_numpy(np.ascontiguousarray(x))).numpy()
    return out, x


def relu_backward(dout, cache):
    return dout * (cache > 0)
