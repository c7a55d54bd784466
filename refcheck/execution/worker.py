"""The untrusted side: one case of the user's implementation, in a process that holds no reference.

``run_implementation`` is what an implementation worker executes. It generates the case's inputs
(deterministic from the case), calls forward and backward on fresh copies, checks that no input
was mutated, runs the finite-difference self-check, captures everything printed, and returns
plain data: the outputs and gradients as numpy arrays, and what went wrong. It never imports
torch (an import-linter contract forbids it, even indirectly), so torch in ``sys.modules`` here
means the user's code imported it. Whatever the user's code raises, ``SystemExit`` and
``KeyboardInterrupt`` included, becomes part of the returned data.
"""
from __future__ import annotations

import os
import time
import traceback
from functools import lru_cache
from typing import Any

import numpy as np

from ..adapters import (ForeignResult, LayerFunctions, Misfit, call_forward_backward, gradient_tuple, hparams_for_call,
                        named_outputs, unsupported_reason, upstream_for_backward, user_name)
from ..cases import Case, make_inputs, make_upstream_gradients
from ..specs import LAYERS, LayerSpec, Unsupported
from .capture import capture_output
from .frameworks import REFERENCE_LAYERS, frameworks_in_namespace, frameworks_loaded
from .implementation import BUILTIN, ImportedCode, Implementation, implementation_of, import_implementation
from .selfcheck import self_consistency

__all__ = ["EXIT_ZERO_CODE", "error_text", "frameworks_used", "in_worker", "mark_worker", "plain",
           "reraise_if_real_interrupt", "rerun_implementation", "run_implementation", "run_implementations"]

_IN_WORKER = False

EXIT_ZERO_CODE = 86
"""A worker that the user's code ends with ``os._exit(0)`` exits with this code instead: a process
pool takes a worker's exit with code 0 for a normal end, and the case would only time out."""


def _exit_nonzero(code: int = 0, _real_exit=os._exit) -> None:  # type: ignore[no-untyped-def]
    _real_exit(code if code else EXIT_ZERO_CODE)


def mark_worker() -> None:
    """Called by a worker's start-up: a KeyboardInterrupt here can only come from the user's code,
    and an ``os._exit(0)`` from it must not look like a normal end of the worker."""
    global _IN_WORKER
    _IN_WORKER = True
    os._exit = _exit_nonzero


def in_worker() -> bool:
    return _IN_WORKER


def reraise_if_real_interrupt(error: BaseException) -> None:
    # In-process runs share the terminal's Ctrl-C with the user's code: let a real one stop the run.
    if isinstance(error, KeyboardInterrupt) and not _IN_WORKER:
        raise error


@lru_cache(maxsize=8)
def _imported(reference: str | None, map_path: str | None) -> ImportedCode:
    return import_implementation(reference, map_path)


@lru_cache(maxsize=64)
def _implementation(reference: str | None, map_path: str | None, layer: str) -> Implementation:
    # One layer's discovery: a worker running relu's cases never calls a conv that hangs on its probe.
    return implementation_of(_imported(reference, map_path), [layer])


def plain(value: Any) -> Any:
    """A result as a plain numpy array (what may cross back to the trusted side), or a marker.

    Only numeric arrays travel: anything else (a list, a tensor of another library, an object
    array) is described by its type, so the trusted side never unpickles an object of the user's.
    """
    if value is None:
        return None
    try:
        if isinstance(value, (np.ndarray, np.generic, int, float, complex)) and not isinstance(value, bool):
            array = np.array(value, copy=True, order="C")
            if array.dtype.kind in "biufc":
                return array.view(np.ndarray)
    except Exception:  # noqa: BLE001 - an unreadable value is described, not raised
        pass
    return ForeignResult(type(value).__name__)


def _describe(value: Any) -> str:
    return f"a tuple of {len(value)}" if isinstance(value, tuple) else type(value).__name__


def _changed(original: np.ndarray | None, handed: Any) -> bool:
    if original is None:
        return False
    if not isinstance(handed, np.ndarray):
        return True
    return handed.shape != original.shape or not np.array_equal(handed, original, equal_nan=True)


def error_text(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit({error.code!r}): the implementation tried to exit the process"
    return f"{type(error).__name__}: {error}"


def _call(raw: dict[str, Any], spec: LayerSpec, functions: LayerFunctions, tensors: dict[str, Any],
          gradients: dict[str, np.ndarray], hparams: dict[str, Any], forward_only: bool) -> None:
    """Forward then backward on fresh copies; fills ``raw`` (results, mutations, errors)."""
    handed = {name: None if value is None else value.copy() for name, value in tensors.items()}
    phase = "forward"
    results = raw["results"]
    try:
        returned = functions.forward(*[handed[n] for n in spec.tensors], **hparams)
        if not isinstance(returned, tuple) or len(returned) != 2:
            raw.update(status="error", reason=f"{user_name(functions.origin)} must return (out, cache), "
                                              f"got {_describe(returned)}")
            return
        outputs, cache = returned
        try:
            named = named_outputs(spec, outputs, functions.origin)
            results.update({name: plain(value) for name, value in named.items()})
        except ValueError as error:
            raw.update(status="error", reason=str(error))
            return
        changed_by_forward = [n for n in spec.tensors if _changed(tensors[n], handed[n])]
        raw["mutated"] += [f"forward mutated its input '{n}' in place" for n in changed_by_forward]
        if forward_only:
            return
        raw["interleaved"] = _another_forward(spec, functions, tensors, hparams)
        # An output the next call changed is a buffer the code reuses: in a network the first layer's
        # output would change under it.
        if any(isinstance(value, np.ndarray) and isinstance(results.get(name), np.ndarray)
               and _changed(results[name], value) for name, value in named.items()):
            raw["mutated"].append("output buffer reused: forward returned an array that its next call changed")
        if functions.backward is None:
            raw["backward_error"] = (f"no backward: {functions.missing or 'the backward'} is missing "
                                     "(use --forward-only to check outputs alone)")
            return
        phase = "backward"
        handed_dout = upstream_for_backward(spec, gradients)
        grads = functions.backward(handed_dout, cache)
        douts = handed_dout if len(spec.differentiable_outputs) > 1 else (handed_dout,)
        if any(_changed(gradients.get(name), dout) for name, dout in zip(spec.differentiable_outputs, douts)):
            raw["mutated"].append("backward mutated the upstream gradient 'dout' in place")
        raw["mutated"] += [f"backward mutated the input '{n}' in place" for n in spec.tensors
                           if n not in changed_by_forward and _changed(tensors[n], handed[n])]
    except Unsupported as error:
        if not _raised_by_refcheck(error):
            raw.update(status="error", reason=f"{phase} raised {_USER_UNSUPPORTED}: {error}",
                       traceback=traceback.format_exc())
            return
        if phase == "backward":  # the outputs are still compared (the case is skipped, see judge)
            raw["backward_skipped"] = f"unsupported: {error}"
        else:
            raw.update(status="skipped", reason=f"unsupported: {error}")
        return
    except BaseException as error:  # noqa: BLE001 - the user's code may raise anything, exits included
        reraise_if_real_interrupt(error)
        # refcheck's own Misfit says what the user's code returned, in their terms: no raise of theirs.
        message = f"{phase} returned the wrong thing: {error}" if isinstance(error, Misfit) else \
            f"{phase} raised {error_text(error)}"
        if phase == "forward":
            raw.update(status="error", reason=message, traceback=traceback.format_exc())
        else:
            raw.update(backward_error=message, traceback=traceback.format_exc())
        return
    names = spec.differentiable
    grads = gradient_tuple(grads, len(names))
    if len(grads) != len(names):
        raw["grad_error"] = (f"backward returned {len(grads)} gradient(s), expected {len(names)} "
                             f"({', '.join(names)}, in forward's order)")
        return
    results.update({f"grad_{name}": plain(grad) for name, grad in zip(names, grads)})


def _another_forward(spec: LayerSpec, functions: LayerFunctions, tensors: dict[str, Any],
                     hparams: dict[str, Any]) -> bool:
    """Forward once more, on other inputs (the case's input in reverse order), between the case's
    forward and its backward, as a network with two layers of this kind calls them: a backward that
    reads what the last forward left in module or class state instead of its own cache gets this
    call's and fails the case. What this call returns or raises is not looked at."""
    first = spec.tensors[0]
    x = tensors.get(first)
    if not isinstance(x, np.ndarray) or x.size < 2 or not functions.backward:
        return False
    other = {name: None if value is None else value.copy() for name, value in tensors.items()}
    other[first] = np.ascontiguousarray(x.reshape(-1)[::-1].reshape(x.shape))
    try:
        functions.forward(*[other[n] for n in spec.tensors], **hparams)
    except Exception:  # noqa: BLE001 - the case's own calls decide its verdict
        pass
    return True


def _state_copy(state: dict[str, Any]) -> dict[str, Any]:
    return {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in state.items()}


def _state_changed(before: dict[str, Any], handed: Any) -> bool:
    if not isinstance(handed, dict) or handed.keys() != before.keys():
        return True
    return any(_changed(value, handed[key]) if isinstance(value, np.ndarray) else handed[key] is not value
               for key, value in before.items())


def _call_steps(raw: dict[str, Any], spec: LayerSpec, step: Any, tensors: dict[str, Any],
                hparams: dict[str, Any]) -> None:
    """An update rule's ``step(param, grad, state, **hparams)`` once per gradient, the state carried.

    Every call gets fresh copies of the parameter, the gradient and the state (``{}`` first); a call
    that changes them in place is recorded in ``raw["mutated"]``. ``raw["results"]`` gets the
    parameter after each step (``param_step<k>``) and the state entries after the last
    (``state_<key>``), as plain arrays.
    """
    param, state = tensors["param"], {}
    results = raw["results"]
    for index, grad in enumerate(tensors["grads"], start=1):
        handed = {"param": np.array(param, copy=True), "grad": np.array(grad, copy=True), "state": _state_copy(state)}
        try:
            returned = step(handed["param"], handed["grad"], handed["state"], **hparams)
        except Unsupported as error:
            if _raised_by_refcheck(error):
                raw.update(status="skipped", reason=f"unsupported: {error}")
            else:
                raw.update(status="error", reason=f"step {index} raised {_USER_UNSUPPORTED}: {error}",
                           traceback=traceback.format_exc())
            return
        except BaseException as error:  # noqa: BLE001 - the user's code may raise anything, exits included
            reraise_if_real_interrupt(error)
            raw.update(status="error", reason=f"step {index} raised {error_text(error)}",
                       traceback=traceback.format_exc())
            return
        for name, before in (("param", param), ("grad", grad)):
            if _changed(before, handed[name]):
                raw["mutated"].append(f"step {index} mutated its input '{name}' in place")
        if _state_changed(state, handed["state"]):
            raw["mutated"].append(f"step {index} mutated the state it was given in place")
        if not isinstance(returned, tuple) or len(returned) != 2 or not isinstance(returned[1], dict):
            raw.update(status="error", reason=f"step {index} must return (new_param, new_state dict), "
                                              f"got {_describe(returned)}")
            return
        param, state = returned
        results[f"param_step{index}"] = plain(param)
        if not isinstance(param, np.ndarray):
            return  # the comparison names what it was; the next step could not take it
    for name in spec.outputs:
        if name.startswith("state_"):
            results[name] = plain(state.get(name.removeprefix("state_")))


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_USER_UNSUPPORTED = ("refcheck's Unsupported, which only refcheck's adapters raise (a case your code cannot take "
                     "is told by its signature or a mapping's fixed, and is then left out when planning)")


def _raised_by_refcheck(error: BaseException) -> bool:
    """Whether an Unsupported was raised in refcheck's own code (an adapter that cannot express the
    case), not in the user's: code that raised it itself would skip every case it chose."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    if frame is None:
        return False
    path = os.path.abspath(frame.tb_frame.f_code.co_filename)
    return path.startswith(_PACKAGE + os.sep)


def run_implementation(reference: str | None, case: Case, *, selfcheck: bool = True,
                       forward_only: bool = False, map_path: str | None = None) -> dict[str, Any]:
    """Run one case of the implementation named by ``reference``; plain data for the trusted side.

    Returns a dict with ``status`` ("ran", "skipped", "error"), ``reason``, ``results``
    (compared-tensor name -> array or :class:`ForeignResult`), ``mutated``, ``backward_error``,
    ``backward_skipped`` (the backward raised Unsupported), ``grad_error``, ``traceback``, ``selfcheck``, ``stdout``/``stderr`` (bounded excerpts),
    ``frameworks``, ``origin`` and ``user_seconds``.
    """
    raw: dict[str, Any] = {"case": case.id, "status": "ran", "reason": "", "results": {}, "mutated": [],
                           "backward_error": "", "backward_skipped": "", "grad_error": "", "traceback": "",
                           "selfcheck": {}, "stdout": "", "stderr": "", "frameworks": [], "origin": "",
                           "user_seconds": 0.0, "interleaved": False}
    with capture_output() as captured:
        try:
            _run(raw, reference, case, selfcheck, forward_only, map_path)
        except BaseException as error:  # noqa: BLE001 - e.g. SystemExit while importing the module
            reraise_if_real_interrupt(error)
            raw.update(status="error", reason=error_text(error), traceback=traceback.format_exc())
    raw.update(stdout=captured.stdout, stderr=captured.stderr)
    return raw


def run_implementations(reference: str | None, cases: list[Case], **options: Any) -> list[dict[str, Any]]:
    """:func:`run_implementation` for consecutive cases in one task (fewer round trips to this
    worker); a case that hangs or ends the process fails the whole task, and the runner then
    runs that task's cases one by one."""
    return [run_implementation(reference, case, **options) for case in cases]


def _run(raw: dict[str, Any], reference: str | None, case: Case, selfcheck: bool, forward_only: bool,
         map_path: str | None) -> None:
    implementation = _loaded(reference, map_path, case.layer)
    # The case's own time, without loading the module (a fresh worker pays that once).
    started = time.perf_counter()
    try:
        _run_loaded(raw, implementation, case, selfcheck, forward_only)
    finally:
        raw["user_seconds"] = time.perf_counter() - started


def _loaded(reference: str | None, map_path: str | None, layer: str) -> Implementation:
    """:func:`_implementation`, with what the module's import and discovery's probe calls print
    kept out of the case's captured output (which is its own calls'); printed into it when loading
    fails, since the case's error row is then about the loading."""
    failure: BaseException | None = None
    with capture_output() as loading:
        try:
            implementation = _implementation(reference, map_path, layer)
        except BaseException as error:  # noqa: BLE001 - raised again below, after the output
            failure = error
    if failure is not None:
        for fd, text in ((1, loading.stdout), (2, loading.stderr)):
            os.write(fd, text.encode(errors="replace"))
        raise failure
    return implementation


def _run_loaded(raw: dict[str, Any], implementation: Implementation, case: Case, selfcheck: bool,
                forward_only: bool) -> None:
    functions = implementation.layers.get(case.layer)
    raw["frameworks"] = frameworks_used(implementation)
    if functions is None:
        raw.update(status="skipped", reason=f"not implemented: {implementation.name} has no {case.layer}")
        return
    raw["origin"] = functions.description
    reason = unsupported_reason(functions, case.hparam_map, case.shape_map)
    if reason:
        raw.update(status="skipped", reason=reason)
        return
    spec = LAYERS[case.layer]
    tensors = make_inputs(case)
    hparams = hparams_for_call(functions, case.hparam_map)
    if spec.is_update_rule:
        _call_steps(raw, spec, functions.forward, tensors, hparams)
        raw["frameworks"] = frameworks_used(implementation)
        return
    gradients = make_upstream_gradients(case)
    _call(raw, spec, functions, tensors, gradients, hparams, forward_only)
    if raw["status"] == "ran" and not forward_only and selfcheck and not raw["mutated"] and functions.backward:
        try:
            raw["selfcheck"] = self_consistency(spec, functions, tensors, hparams, gradients, case.seed)
        except BaseException as error:  # noqa: BLE001 - the self-check re-runs the user's code
            reraise_if_real_interrupt(error)
            raw["selfcheck"] = {"reason": f"self-check not possible: {error_text(error)}"}
    raw["frameworks"] = frameworks_used(implementation)


def frameworks_used(implementation: Implementation) -> list[str]:
    """Frameworks the implementation uses: any loaded in a worker (which never loads one itself),
    and, in-process too, those its module refers to."""
    found = set(frameworks_in_namespace(implementation.module))
    if _IN_WORKER:
        found |= set(frameworks_loaded())
    if implementation.name == BUILTIN:  # refcheck's own layers, checked as themselves
        found.discard(REFERENCE_LAYERS)
    return sorted(found)


def rerun_implementation(reference: str | None, case: Case, tensors: dict[str, Any],
                         gradients: dict[str, np.ndarray], map_path: str | None = None) -> dict[str, Any]:
    """The user's forward and backward on given inputs (for the diagnosis): results as plain arrays.

    Raises RuntimeError (with the user's exception as text) when the user's code fails.
    """
    functions = _implementation(reference, map_path, case.layer).layers[case.layer]
    hparams = hparams_for_call(functions, case.hparam_map)
    with capture_output():
        try:
            results = call_forward_backward(LAYERS[case.layer], functions, tensors, hparams, gradients)
        except BaseException as error:  # noqa: BLE001 - a rerun that fails only means "not this mistake"
            reraise_if_real_interrupt(error)
            raise RuntimeError(error_text(error)) from None
    return {name: plain(value) for name, value in results.items()}
