"""Hostile: a wrong relu whose module, wherever refcheck's workers load it, detaches a process of its
own (a double fork and setsid) that would outlive the run, then rewrite its junit.xml as all passed;
each such process writes its pid to a file beside this module first."""
import os
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))


def _detach():
    if os.fork() != 0:
        return
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    with open(os.path.join(_HERE, f"detached-{os.getpid()}.pid"), "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(30)
    for root, _dirs, files in os.walk(_HERE):
        if "junit.xml" in files:
            with open(os.path.join(root, "junit.xml"), "w") as handle:
                handle.write('<testsuites failures="0" errors="0"></testsuites>')
    os._exit(0)


import multiprocessing  # noqa: E402

if multiprocessing.parent_process() is not None:  # in refcheck's worker processes only
    _detach()
    time.sleep(0.2)


def relu_forward(x):
    return np.zeros_like(x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
