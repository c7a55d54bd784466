"""The untrusted side of a network check: the user's model trained for a few steps, in a worker.

``run_user_model`` is what an implementation worker executes (it never imports torch). It loads
the implementation, builds the model (a CS231n-style class when the model file names one the
module has, else the module's layers composed in the file's order), and for each step records the
loss, every parameter gradient, the parameters after the update and, for composed layers, every
layer's output and input gradient. The update is plain SGD (``w - lr * dw``), or the rule the
model file names: the module's own when it has one (found as ``refcheck run`` finds it: a
contract-style ``<rule>_step(param, grad, state, **hyper)``, CS231n's ``optim.py`` functions, ...),
refcheck's built-in rule otherwise. Only plain arrays and text go back.
"""
from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..adapters import hparams_for_call, unsupported_reason
from ..execution.capture import capture_output
from ..execution.implementation import BUILTIN, Implementation, load_implementation
from ..execution.worker import error_text, frameworks_used, plain, reraise_if_real_interrupt
from ..specs import LAYERS, Unsupported
from .class_model import ClassModel, find_model_class
from .compose import LayerFailure, compose, run_composed
from .model_file import NetworkModel

__all__ = ["run_user_model"]

Stepper = Callable[[np.ndarray, np.ndarray, dict[str, Any]], tuple[Any, dict[str, Any]]]


def rule_hyperparameters(model: NetworkModel) -> dict[str, Any]:
    """The named rule's hyperparameters: the model file's, torch.optim's defaults for the rest."""
    hparams: dict[str, Any] = {}
    for hyper in LAYERS[model.rule].hypers:
        hparams[hyper.name] = model.hyper.get(hyper.name, hyper.default_for(hparams))
    return hparams


def update_rule(implementation: Implementation, model: NetworkModel) -> tuple[Stepper, str]:
    """The step applied to each parameter, and where it comes from (for the report).

    The implementation's own rule (contract ``<rule>_step``, CS231n's ``optim.py`` functions, ...,
    found as ``refcheck run`` finds them) when it has one; refcheck's built-in one otherwise.
    Raises Unsupported when the user's rule cannot take the model file's hyperparameters.
    """
    if not model.rule:
        lr = model.lr

        def sgd(param: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
            return param - np.asarray(lr, dtype=param.dtype) * grad, state

        return sgd, f"plain SGD, w - lr * dw (lr={lr:g}), applied by refcheck"
    hparams = rule_hyperparameters(model)
    functions = implementation.layers.get(model.rule)
    if functions is None or implementation.name == BUILTIN:
        from ..layers.optim import UPDATE_RULES

        function, origin = UPDATE_RULES[model.rule], f"refcheck's built-in {model.rule}_step"
    else:
        reason = unsupported_reason(functions, hparams)
        if reason:
            raise Unsupported(f"the update rule: {reason}")
        function, origin = functions.forward, functions.origin or f"{model.rule}_step"
        hparams = hparams_for_call(functions, hparams)

    def step(param: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return function(np.array(param, copy=True), np.array(grad, copy=True), state, **hparams)

    return step, origin


def _plain_map(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: plain(value) for name, value in values.items()}


def _train(raw: dict[str, Any], reference: str | None, model: NetworkModel, arrays: Mapping[str, np.ndarray],
           map_path: str | None) -> None:
    implementation = load_implementation(reference, map_path)
    raw["frameworks"] = frameworks_used(implementation)
    cls = find_model_class(implementation.module, model.model_class)
    params = {name: np.array(arrays[name], copy=True) for name in model.parameters}
    x, target = arrays["x"], arrays["target"]
    if cls is not None:
        net = ClassModel(cls, model, str(x.dtype))
        raw.update(style="class", origin=f"{implementation.name}: {net.origin}")
        chain = None
    else:
        chain = compose(implementation.layers, model, implementation.name)
        raw.update(style="layers", origin="; ".join(f"{e.index}: {f.description}" for e, f in zip(model.layers, chain)))
        if model.model_class:
            raw["notes"].append(f"the module has no class {model.model_class}: its layers are composed instead")
        if model.reg:
            raw["notes"].append("reg applies to a model class only; composed layers are checked without it")
    step_fn, raw["rule_origin"] = update_rule(implementation, model)
    states: dict[str, dict[str, Any]] = {name: {} for name in params}
    for step in range(model.steps):
        raw["phase"] = f"step {step}"
        if chain is None:
            net.load(params)
            loss, grads = net.loss_and_grads(x, target)
            if type(loss) is float:  # a Python float carries no dtype: it stands for the model's
                loss = np.asarray(loss, dtype=x.dtype)
            record: dict[str, Any] = {"loss": plain(loss), "grads": _plain_map(grads)}
        else:
            result = run_composed(chain, model, params, x, target)
            loss, grads = result["loss"], result["grads"]
            record = {"loss": plain(loss), "grads": _plain_map(grads),
                      "outputs": [plain(v) for v in result["outputs"]],
                      "grad_inputs": [plain(v) for v in result["grad_inputs"]]}
        raw["steps"].append(record)
        updated = {}
        for name, param in params.items():
            grad = grads.get(name)
            if not isinstance(grad, np.ndarray) or grad.shape != param.shape:
                raise LayerFailure(f"step {step}: the gradient of {name} is not an array of shape {param.shape}; "
                                   "training stops")
            try:
                new, states[name] = step_fn(param, grad, states[name])
            except Exception as error:
                raise LayerFailure(f"step {step}: the update rule ({raw['rule_origin']}) raised on {name}: "
                                   f"{type(error).__name__}: {error}") from error
            updated[name] = np.asarray(new)
        record["updated"] = _plain_map(updated)
        params = updated
    raw["frameworks"] = frameworks_used(implementation)


def run_user_model(reference: str | None, model: NetworkModel, arrays: Mapping[str, np.ndarray],
                   map_path: str | None = None) -> dict[str, Any]:
    """Train the user's model for ``model.steps`` steps on ``arrays`` (x, target, parameters).

    Returns plain data: ``status`` (ran, error, skipped), ``reason``, ``traceback``, ``style``
    (class or layers), ``origin``, ``rule_origin``, ``steps`` (one dict per completed step),
    ``notes``, ``stdout``/``stderr`` excerpts and ``user_seconds``.
    """
    raw: dict[str, Any] = {"status": "ran", "reason": "", "traceback": "", "style": "", "origin": "",
                           "rule_origin": "", "steps": [], "notes": [], "frameworks": [], "phase": "loading", "stdout": "",
                           "stderr": "", "user_seconds": 0.0}
    started = time.perf_counter()
    with capture_output() as captured:
        try:
            _train(raw, reference, model, arrays, map_path)
        except Unsupported as error:
            raw.update(status="skipped", reason=f"unsupported: {error}")
        except BaseException as error:  # noqa: BLE001 - the user's code may raise anything, exits included
            reraise_if_real_interrupt(error)
            cause = error.__cause__ if isinstance(error, LayerFailure) else None
            text = str(error) if isinstance(error, LayerFailure) else f"{type(error).__name__}: {error}"
            if isinstance(error, SystemExit):
                text = error_text(error)
            raw.update(status="error", reason=f"{raw['phase']}: {text}" if not isinstance(error, LayerFailure)
                       or not text.startswith("step") else text,
                       traceback="".join(traceback.format_exception(cause)) if cause else traceback.format_exc())
    raw.update(stdout=captured.stdout, stderr=captured.stderr, user_seconds=time.perf_counter() - started)
    return raw
