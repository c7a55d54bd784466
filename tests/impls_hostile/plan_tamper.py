"""Hostile: a wrong relu whose module, while it is loaded for planning, changes refcheck's planning
in that process. _HOW says how (a test writes it): "tolerance" widens every case's tolerance,
"empty" keeps each case's id but empties its batch, "name" renames the implementation to
refcheck's own layers (so that the case workers would load those), "values" turns every special
input kind into normal inputs under the case's id, "slope" runs every leaky_relu case at the one
slope its code has (0.01) under the case's id, "forward_only" asks for the outputs alone (its
relu's forward is right there, its backward wrong), "drop" leaves out every case of special inputs,
"drop_layer" leaves out the (wrong) relu's layer, "swap_layer" plans the (right) leaky_relu's cases
in place of the relu's that --layers asks for."""
import dataclasses
import sys

import numpy as np

_HOW = "tolerance"


def _tampered(result):
    cases, coverage = result
    if _HOW == "tolerance":
        huge = (("float32", 1e300), ("float64", 1e300), ("torch_factor", 1e300))
        cases = [dataclasses.replace(case, tolerance=huge) for case in cases]
    elif _HOW == "empty":
        cases = [dataclasses.replace(case, shapes=tuple((name, None if shape is None else (0, *shape[1:]))
                                                        for name, shape in case.shapes)) for case in cases]
    elif _HOW == "values":
        cases = [dataclasses.replace(case, values="normal") for case in cases]
    elif _HOW == "drop":  # the cases its code would fail, left out of the plan (each kept one unchanged)
        cases = [case for case in cases if case.values == "normal"]
    elif _HOW == "slope":
        cases = [dataclasses.replace(case, hparams=(("negative_slope", 0.01),)) for case in cases]
    return cases, coverage


_sweep = sys.modules.get("refcheck.execution.sweep")
if _sweep is not None and not getattr(_sweep, "_tampered", False):
    _sweep._tampered = True
    _expand_cached, _expand = _sweep.expand_cached, _sweep.expand
    _sweep.expand_cached = lambda *args, **kwargs: _tampered(_expand_cached(*args, **kwargs))
    _sweep.expand = lambda *args, **kwargs: _tampered(_expand(*args, **kwargs))
    if _HOW == "forward_only":  # the plan is made after this import: made forward-only, then the class put back
        _Plan = _sweep.Plan

        def _forward_only_plan(*args, **kwargs):
            _sweep.Plan = _Plan
            plan = _Plan(*args, **kwargs)
            plan.forward_only = True
            return plan

        _sweep.Plan = _forward_only_plan
if _sweep is not None and _HOW in ("drop_layer", "swap_layer") and not getattr(_sweep, "_layers_tampered", False):
    _sweep._layers_tampered = True
    _load_spaces = _sweep.load_spaces
    _sweep.load_spaces = lambda cases, chosen: _load_spaces(
        cases, [layer for layer in chosen if layer != "relu"] if _HOW == "drop_layer" else ["leaky_relu"])
_planning = sys.modules.get("refcheck.execution.planning")
if _HOW == "name" and _planning is not None:
    _init = _planning.DetachedImplementation.__init__
    _planning.DetachedImplementation.__init__ = lambda self, name, *rest, **kw: _init(self, "refcheck.layers", *rest, **kw)


def relu_forward(x):
    return (np.maximum(x, 0) if _HOW == "forward_only" else np.zeros_like(x)), x


def relu_backward(dout, cache):
    return np.zeros_like(cache)


def leaky_relu_forward(x):
    return np.where(x > 0, x, 0.01 * x), x


def leaky_relu_backward(dout, cache):
    return np.where(cache > 0, dout, 0.01 * dout)
