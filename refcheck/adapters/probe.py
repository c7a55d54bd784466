"""One probe call per candidate: does this function or class fit the layer, and in which layout?

The probe case of a layer has sizes that are all distinct (batch 2, 3 input channels, 4 filters,
a 5x5 kernel on an 11x10 image...), so each layout gives a different shape and the layout is read
from shapes alone. Values are never looked at: a layout or a fixed hyperparameter is decided
before any comparison with torch, so it can never hide a bug. A hyperparameter the code has no
argument for is probed the same way: if the output shape matches another value than torch's
default (a conv that always pads 'same', a pool with a fixed stride), that value is what the code
implements, and it is checked there.
"""
from __future__ import annotations

import inspect
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..cases import Case, Space, build_case, make_inputs, make_upstream_gradient
from ..specs import InvalidConfig, layer_spec
from .contract import LayerFunctions, Misfit, gradient_tuple, hparams_for_call, required_by_torch
from .optional_tensors import fit_optional_tensors

__all__ = ["ProbeOutcome", "asymmetric_probe_case", "binding_error", "has_probe_case", "leading_axes_case",
           "mode_probe_cases", "probe", "probe_case"]

_PROBE_PARAMS: dict[str, dict[str, Any]] = {
    "conv": {"batch": 2, "channels": (3, 4), "input_size": (11, 10), "kernel_size": 5, "bias": True},
    "pooling": {"batch": 2, "channels": 3, "input_size": (9, 11)},
    "dense": {"batch_shape": (2,), "features": (5, 3), "bias": True, "input_shape": (2, 3, 4, 5)},
    "activation": {"input_shape": (3, 5)},
    "loss": {"input_shape": (4, 3)},
}
_REQUIRED = {"kernel_size": 2, "norm_type": 2, "output_size": (4, 5), "dim": 1}

# Values a code may fix without an argument for them, tried after torch's default.
_FIXED_CANDIDATES: dict[str, dict[str, tuple[Any, ...]]] = {
    "conv2d": {"padding": ("same", (1, 1), (2, 2)), "stride": ((2, 2),)},
    "max_pool2d": {"stride": ((1, 1), (2, 2)), "padding": ((1, 1),), "kernel_size": ((3, 3),)},
    "avg_pool2d": {"stride": ((1, 1), (2, 2)), "padding": ((1, 1),), "kernel_size": ((3, 3),)},
    "flatten": {"start_dim": (1,)},
    "adaptive_avg_pool2d": {"output_size": ((1, 1),)},
    "adaptive_max_pool2d": {"output_size": ((1, 1),)},
}


# A value of each pair-valued hyperparameter whose two axes differ, valid on the probe cases.
_ASYMMETRIC: dict[str, tuple[int, int]] = {"stride": (2, 1), "padding": (1, 0), "dilation": (2, 1), "kernel_size": (3, 2)}


def asymmetric_probe_case(layer: str, name: str) -> Case | None:
    """The probe case with hyperparameter ``name`` at a value whose two axes differ (None when the
    layer has no such hyperparameter, e.g. conv2d's kernel size, read from the weight)."""
    spec = layer_spec(layer)
    if name not in _ASYMMETRIC or name not in spec.hyper_names or spec.family not in _PROBE_PARAMS:
        return None
    case = _with_hparams(probe_case(layer), {name: _ASYMMETRIC[name]})
    try:
        spec.output_shape(case.shape_map, case.hparam_map)
    except InvalidConfig:
        return None
    return case


def leading_axes_case(layer: str) -> Case | None:
    """linear's probe case with a leading axis more, (N, L, in_features), as torch's linear takes it."""
    if layer != "linear":
        return None
    return build_case(Space(layer, "probe", {}, {}, ()), {**_PROBE_PARAMS["dense"], "batch_shape": (2, 3)})


def mode_probe_cases(layer: str, name: str) -> list[Case]:
    """The probe case with ``name`` at each padding mode the layer has ('same', 'valid'), if any."""
    spec = layer_spec(layer)
    if name != "padding" or name not in spec.hyper_names or spec.family not in _PROBE_PARAMS:
        return []
    cases = []
    for mode in ("same", "valid"):
        case = _with_hparams(probe_case(layer), {name: mode})
        try:
            spec.output_shape(case.shape_map, case.hparam_map)
        except (InvalidConfig, TypeError):  # a layer without padding modes (pools)
            continue
        cases.append(case)
    return cases


def probe_case(layer: str) -> Case:
    """The probe case of a layer: float64, sizes all distinct, torch's defaults elsewhere."""
    spec = layer_spec(layer)
    params = dict(_PROBE_PARAMS[spec.family])
    for hyper in spec.hypers:
        if hyper.name in _REQUIRED and hyper.default is None:
            params[hyper.name] = _REQUIRED[hyper.name]
    return build_case(Space(layer, "probe", {}, {}, ()), params)


@dataclass
class ProbeOutcome:
    """What one probe call showed.

    fits: the candidate is this layer in this layout (signature, return structure and shapes agree).
    raised: the call raised after its arguments were accepted (a bug, not a misfit).
    fixed: hyperparameters the code implements at a value other than torch's default.
    forward_fits: the forward ran and gave the layer's output shape (what went wrong came later).
    ran: the call took the arguments and returned, but what it returned does not fit (a skeleton's
        None, a loss as a 1-element array).
    timed_out: a call ran past PROBE_SECONDS (no other layout or form is worth a try).
    """

    fits: bool
    reason: str = ""
    raised: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)
    forward_fits: bool = False
    ran: bool = False
    timed_out: bool = False


def _shape(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, np.ndarray):
        return value.shape
    if np.isscalar(value):
        return ()
    return None


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"a {type(value).__name__}"


def _fixed_values(layer: str, functions: LayerFunctions, case: Case, shape: tuple[int, ...]) -> dict[str, Any] | None:
    """Values of non-accepted hyperparameters under which torch's output has ``shape``."""
    spec = layer_spec(layer)
    hparams = case.hparam_map
    for name, values in _FIXED_CANDIDATES.get(layer, {}).items():
        if functions.accepted is None or name in functions.accepted:
            continue
        for value in values:
            found = {name: value}
            if name == "kernel_size" and "stride" in hparams and "stride" not in functions.accepted:
                found["stride"] = value  # torch's default stride is the kernel size
            try:
                if tuple(spec.output_shape(case.shape_map, {**hparams, **found})) == shape:
                    return found
            except InvalidConfig:
                continue
    return None


def _required_fixed(layer: str, functions: LayerFunctions, case: Case) -> dict[str, Any]:
    """Hyperparameters torch requires (no default) that the code takes no argument for, at the
    probe case's values: its output had their shape there, so the code fixes them (a 2x2 pool with
    no kernel_size). softmax's dim does not show in the shape: it is told from the values."""
    if functions.accepted is None:
        return {}
    fixed = {hyper.name: case.hparam_map[hyper.name] for hyper in layer_spec(layer).hypers
             if required_by_torch(hyper) and hyper.name not in functions.accepted and hyper.name in case.hparam_map}
    if "dim" in fixed and layer in _SOFTMAX_LIKE:
        fixed["dim"] = _softmax_axis(layer, functions)
    return fixed


_SOFTMAX_LIKE = ("softmax", "log_softmax")


def _softmax_axis(layer: str, functions: LayerFunctions) -> int:
    """The axis a softmax (or log_softmax) without a dim argument works along, from one call on a
    (2, 3, 4) input compared with refcheck's own along each axis; the last axis when none agrees
    (its cases then show what the code does)."""
    from .. import layers

    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    try:
        with _guarded():
            output = np.asarray(functions.forward(x.copy())[0], dtype=np.float64)
    except BaseException:  # noqa: BLE001 - the user's code may raise anything; its cases will show it
        return -1
    for dim in (-1, 1, 0):
        expected = getattr(layers, f"{layer}_forward")(x, dim=dim)[0]
        if output.shape == expected.shape and np.allclose(output, expected, rtol=1e-6, atol=1e-9):
            return dim
    return -1


def binding_error(function: Any, count: int) -> str:
    """Why ``function`` cannot be called with ``count`` positional arguments ('' if it can, or if
    its signature cannot be read)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return ""
    try:
        signature.bind(*range(count))
    except TypeError as error:
        return str(error)
    return ""


def has_probe_case(layer: str) -> bool:
    """Whether the layer has a probe case (layers of one output; not the norm, recurrent... ones)."""
    return layer_spec(layer).family in _PROBE_PARAMS


PROBE_SECONDS = 10.0
"""How long one call of the user's code on a probe case may take (a naive loop takes milliseconds)."""


class ProbeTimeout(Exception):
    """A probe call ran past PROBE_SECONDS."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise ProbeTimeout(f"the call did not return within {PROBE_SECONDS:g} s")


@contextmanager
def _guarded() -> Iterator[None]:
    """A call of the user's code on a probe case: an ``os._exit`` in it raises SystemExit instead of
    ending the process that plans the sweep (and with it every layer's report), and a call running
    past PROBE_SECONDS raises ProbeTimeout (a timer signal; in the main thread only). Either way
    the candidate is kept as one that raises, so its cases show what it does."""
    real_exit = os._exit

    def exit_raises(code: int = 0) -> None:
        raise SystemExit(f"os._exit({code}) called")

    timed = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    previous = signal.signal(signal.SIGALRM, _on_alarm) if timed else None
    os._exit = exit_raises
    if timed:
        signal.setitimer(signal.ITIMER_REAL, PROBE_SECONDS)
    try:
        yield
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        os._exit = real_exit


def probe(functions: LayerFunctions, case: Case | None = None) -> ProbeOutcome:
    """Call ``functions`` once on the layer's probe case and say whether they fit the layer."""
    layer = functions.layer
    spec = layer_spec(layer)
    case = case or probe_case(layer)
    stated = {name: value for name, value in functions.fixed.items() if name in case.hparam_map
              and functions.accepted is not None and name not in functions.accepted}
    if stated:  # values the code is known to fix (a mapping's, torch.nn's class defaults): the case has them
        case = _with_hparams(case, stated)
    tensors = make_inputs(case)
    hparams = hparams_for_call(functions, case.hparam_map)
    expected = tuple(spec.output_shape(case.shape_map, case.hparam_map))
    handed = [None if tensors[n] is None else tensors[n].copy() for n in spec.tensors]
    try:
        # Called as the sweep calls it: without the trailing optional tensors it does not take.
        with _guarded():
            returned = fit_optional_tensors(functions).forward(*handed, **hparams)
    except BaseException as error:  # noqa: BLE001 - the user's code may raise anything, even an interrupt
        return ProbeOutcome(False, f"forward raised {type(error).__name__}: {error}", raised=_bound(error),
                            timed_out=isinstance(error, ProbeTimeout))
    if not isinstance(returned, tuple) or len(returned) != 2:
        return ProbeOutcome(False, f"returns {_describe(returned)}, {layer} needs (output, cache)", ran=True)
    output, cache = returned
    shape = _shape(output)
    fixed: dict[str, Any] = {}
    if shape != expected:
        found = _fixed_values(layer, functions, case, shape) if shape is not None else None
        if found is None:
            return ProbeOutcome(False, f"output is {_describe(output)}, {layer} gives shape {expected} here", ran=True)
        fixed = found
        case = _with_hparams(case, found)
    fixed = {**_required_fixed(layer, functions, case), **fixed}
    if functions.backward is None:
        return ProbeOutcome(True, fixed=fixed)
    dout = make_upstream_gradient(case, shape)
    try:
        with _guarded():
            grads = gradient_tuple(functions.backward(dout, cache))
    except BaseException as error:  # noqa: BLE001
        return ProbeOutcome(False, f"backward raised {type(error).__name__}: {error}", raised=_bound(error),
                            fixed=fixed, forward_fits=True, timed_out=isinstance(error, ProbeTimeout))
    present = [n for n in spec.differentiable if case.shape_map.get(n) is not None]
    if len(grads) < len(present):
        return ProbeOutcome(False, f"backward returns {len(grads)} gradient(s), {layer} needs {len(present)}",
                            fixed=fixed, forward_fits=True, ran=True)
    for name, grad in zip(present, grads):
        wanted = case.shape_map[name]
        if _shape(grad) != tuple(wanted):
            return ProbeOutcome(False, f"gradient of {name} is {_describe(grad)}, expected shape {tuple(wanted)}",
                                raised=True, fixed=fixed, forward_fits=True)
    return ProbeOutcome(True, fixed=fixed)


def _bound(error: BaseException) -> bool:
    """A TypeError about arguments is a misfit (wrong signature); anything else is a bug in the code."""
    text = str(error)
    if isinstance(error, Misfit):
        return False
    if isinstance(error, TypeError) and ("argument" in text or "positional" in text):
        return False
    return True


def _with_hparams(case: Case, values: Mapping[str, Any]) -> Case:
    merged = {**case.hparam_map, **values}
    return replace(case, hparams=tuple(merged.items()))
