"""Elementwise activations written as a function and its derivative, mapped onto the contract.

Three common styles give an activation no ``backward(dout, cache)`` of the contract's kind:

=========================================================  ===========================================
the user's code                                            backward used
=========================================================  ===========================================
``sigmoid(z)`` with ``sigmoid_prime(z)`` (also             ``dout * sigmoid_prime(z)``
``_derivative``, ``_deriv``, ``_grad``, ``d_sigmoid``...)
``relu(Z) -> (A, cache)`` with ``relu_backward(dA,         ``relu_backward(dout, cache)``
cache)`` (deeplearning.ai)
a class ``Sigmoid`` with ``fn``/``forward``/``__call__``   ``dout * obj.grad(z)``
and ``grad``/``derivative``/``prime`` (numpy-ml), no
``backward``
=========================================================  ===========================================

A derivative is written either of the input (``sigmoid_prime(z) = s(z) * (1 - s(z))``) or of the
output (``sigmoid_derivative(s) = s * (1 - s)``, called with the forward's result). Which one is
decided once, on a probe: the one that agrees with a central difference of the user's own forward
(never with torch, so the choice cannot hide a mistake that shows against torch); when neither
does, the input, unless the derivative's argument is named like an output (``s``, ``a``, ``y``,
``out``). The report's implementation column says which. Hyperparameters (a leaky ReLU's slope) are
passed by name (or alias) to the forward and, if it takes them, to the derivative.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from ..specs import layer_spec
from .construct import ALIASES, plain_name
from .contract import LayerFunctions, positional_parameters
from .names import CLASS_FAMILIES, normalise
from .probe import _guarded

__all__ = ["ELEMENTWISE", "adapt_derivatives"]

ELEMENTWISE = ("relu", "leaky_relu", "sigmoid", "tanh", "gelu", "elu", "selu", "softplus", "silu", "hardtanh")
_MORE_NAMES = {"gelu": ("gelu",), "elu": ("elu",), "selu": ("selu",), "softplus": ("softplus",),
               "silu": ("silu", "swish"), "hardtanh": ("hardtanh",)}
_FUNCTION_LAYER = {name: layer for layer in ELEMENTWISE
                   for name in CLASS_FAMILIES.get(layer, ()) + _MORE_NAMES.get(layer, ())}
_SUFFIXES = ("prime", "derivative", "deriv", "grad", "gradient", "diff", "der")
_PREFIXES = ("derivativeof", "derivative", "deriv", "gradient", "grad", "d")
_FORWARD_METHODS = ("forward", "fn", "__call__", "call", "activate", "function", "compute")
_DERIVATIVE_METHODS = ("grad", "derivative", "prime", "deriv", "gradient", "df", "derivate")
# An argument named like the forward's result: the derivative is written of the output.
_OUTPUT_NAMES = frozenset({"s", "a", "y", "out", "output", "activation", "act", "fx", "sig", "sigma", "h",
                           "activated", "result"})
_FLAG_NAMES = frozenset({"deriv", "derivative", "derive", "grad", "gradient", "prime", "d", "backward"})
_PROBE = np.array([[-2.3, -1.1, -0.45, 0.3], [0.85, 1.7, -0.2, 2.1]])


def _elementwise_layer(name: str) -> str | None:
    return _FUNCTION_LAYER.get(normalise(name))


def _derivative_of(name: str) -> str | None:
    """The forward's normalised name that a derivative's name is built on (``sigmoid_prime`` -> sigmoid)."""
    plain = normalise(name)
    for suffix in _SUFFIXES:
        if plain.endswith(suffix) and plain[: -len(suffix)] in _FUNCTION_LAYER:
            return plain[: -len(suffix)]
    for prefix in _PREFIXES:
        if plain.startswith(prefix) and plain[len(prefix):] in _FUNCTION_LAYER:
            return plain[len(prefix):]
    return None


def _keywords(function: Callable[..., Any], layer: str, first: int = 1) -> dict[str, str]:
    """The function's keyword parameters (from the ``first``; the input before it) that are the
    layer's hyperparameters: {its name: torch's}."""
    hypers = set(layer_spec(layer).hyper_names)
    try:
        parameters = list(inspect.signature(function).parameters.values())[first:]
    except (TypeError, ValueError):
        return {}
    found = {}
    for parameter in parameters:
        if parameter.name in hypers:
            found[parameter.name] = parameter.name
        elif ALIASES.get(plain_name(parameter.name)) in hypers:
            found[parameter.name] = ALIASES[plain_name(parameter.name)]
        elif layer == "elu" and plain_name(parameter.name) == "alpha":
            found[parameter.name] = "alpha"
    return found


def _first_argument(function: Callable[..., Any], skip: int = 0) -> str:
    """The name of the argument after the first ``skip`` (a method's ``self``)."""
    parameters = (positional_parameters(function) or [])[skip:]
    return parameters[0].name if parameters else ""


def _of_output(forward: Callable[[np.ndarray], Any], derivative: Callable[[np.ndarray], Any], argument: str) -> bool:
    """Whether ``derivative`` is written of the forward's output (see the module's docstring)."""
    def agrees(at: np.ndarray, slope: np.ndarray) -> bool:
        value = np.asarray(derivative(at), dtype=float)
        return value.shape in (slope.shape, (1, *slope.shape)) and np.allclose(value.reshape(slope.shape), slope,
                                                                               rtol=1e-3, atol=1e-4)
    try:
        with _guarded(), np.errstate(all="ignore"):  # a hang or an os._exit here stops the probe alone
            step = 1e-5
            slope = (np.asarray(forward(_PROBE + step), dtype=float)
                     - np.asarray(forward(_PROBE - step), dtype=float)).reshape(_PROBE.shape) / (2 * step)
            if agrees(_PROBE.copy(), slope):
                return False
            if agrees(np.asarray(forward(_PROBE.copy()), dtype=float).reshape(_PROBE.shape), slope):
                return True
    except (Exception, SystemExit):  # noqa: BLE001 - the user's code on a probe: its cases will show it
        pass
    return plain_name(argument) in _OUTPUT_NAMES


Keywords = dict[str, str]  # the user's keyword -> torch's hyperparameter


def _functions(layer: str, forward: Callable[..., Any], derivative: Callable[..., Any] | None,
               backward: Callable[..., Any] | None, origin: str, *,
               keywords: tuple[Keywords, Keywords] | None = None, argument: str | None = None) -> LayerFunctions:
    """The contract's pair around a forward and either its derivative or its (dA, cache) backward.

    ``keywords``: the hyperparameters each of forward and derivative takes (default: read from
    their signatures); ``argument``: the name of the derivative's argument (default: its first)."""
    forward_keywords, derivative_keywords = keywords or (
        _keywords(forward, layer), _keywords(derivative, layer) if derivative is not None else {})
    argument = _first_argument(derivative) if argument is None and derivative is not None else argument or ""
    at_output = derivative is not None and _of_output(lambda v: _result(forward(v)), derivative, argument)

    def derived_forward(x: np.ndarray, **hparams: Any) -> tuple[Any, Any]:
        returned = forward(x, **{own: hparams[torch] for own, torch in forward_keywords.items() if torch in hparams})
        if backward is not None and isinstance(returned, tuple) and len(returned) == 2:
            return returned[0], returned[1]  # (A, cache), the course's convention
        return returned, (x, returned, hparams)

    def derived_backward(dout: np.ndarray, cache: Any) -> Any:
        if backward is not None:
            return backward(dout, cache)
        x, out, hparams = cache
        kwargs = {own: hparams[torch] for own, torch in derivative_keywords.items() if torch in hparams}
        return dout * derivative(out if at_output else x, **kwargs)

    where = " (of the output)" if at_output else " (of the input)" if derivative is not None else ""
    return LayerFunctions(layer, derived_forward, derived_backward, frozenset(forward_keywords.values()),
                          origin=f"derivative: {origin}{where}", adapter="derivative")


def _result(returned: Any) -> Any:
    return returned[0] if isinstance(returned, tuple) and len(returned) == 2 else returned


def _function_pairs(module: ModuleType) -> dict[str, LayerFunctions]:
    functions = {name: value for name, value in vars(module).items()
                 if inspect.isfunction(value) and not name.startswith("_")}
    found: dict[str, LayerFunctions] = {}
    for name, forward in sorted(functions.items()):
        layer = _elementwise_layer(name)
        if layer is None or name.endswith(("_forward", "_backward")):
            continue
        backward = functions.get(f"{name}_backward")
        if backward is not None:
            found.setdefault(layer, _functions(layer, forward, None, backward, f"{name} with {name}_backward"))
            continue
        flag = _derivative_flag(forward)
        if flag is not None:  # sigmoid(x, deriv=False): the same function, asked for its derivative
            own = _keywords(forward, layer)
            found.setdefault(layer, _functions(layer, _with_flag(forward, flag, False), _with_flag(forward, flag, True),
                                               None, f"{name} with {name}({flag}=True)", keywords=(own, own),
                                               argument=_first_argument(forward)))
            continue
        derivatives = [other for other in sorted(functions) if other != name and _derivative_of(other) == normalise(name)]
        if derivatives:
            found.setdefault(layer, _functions(layer, forward, functions[derivatives[0]], None,
                                               f"{name} with {derivatives[0]}"))
    return found


def _derivative_flag(function: Callable[..., Any]) -> str | None:
    """The name of a boolean parameter that asks for the derivative (``deriv=False``), if any."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    for parameter in parameters:
        if isinstance(parameter.default, bool) and plain_name(parameter.name) in _FLAG_NAMES:
            return parameter.name
    return None


def _with_flag(function: Callable[..., Any], flag: str, value: bool) -> Callable[..., Any]:
    def call(x: np.ndarray, **kwargs: Any) -> Any:
        return function(x, **kwargs, **{flag: value})

    return call


def _method(cls: type, names: tuple[str, ...]) -> str | None:
    for name in names:
        if callable(getattr(cls, name, None)) and (name != "__call__" or "__call__" in vars(cls)
                                                   or any("__call__" in vars(base) for base in cls.__mro__[1:-1])):
            return name
    return None


def _class_pairs(module: ModuleType) -> dict[str, LayerFunctions]:
    found: dict[str, LayerFunctions] = {}
    for name, cls in sorted(vars(module).items()):
        if not inspect.isclass(cls) or callable(getattr(cls, "backward", None)):
            continue
        layer = _elementwise_layer(name)
        forward_name, derivative_name = _method(cls, _FORWARD_METHODS), _method(cls, _DERIVATIVE_METHODS)
        if layer is None or forward_name is None or derivative_name is None or layer in found:
            continue
        found[layer] = _class_functions(layer, cls, forward_name, derivative_name)
    return found


def _class_functions(layer: str, cls: type, forward_name: str, derivative_name: str) -> LayerFunctions:
    """A new object per case, built with the case's hyperparameters its constructor takes by name."""
    constructor_keywords = _keywords(cls, layer, first=0)

    def build(hparams: Mapping[str, Any]) -> Any:
        return cls(**{own: hparams[torch] for own, torch in constructor_keywords.items() if torch in hparams})

    def forward(x: np.ndarray, **hparams: Any) -> Any:
        return getattr(build(hparams), forward_name)(x)

    def derivative(value: np.ndarray, **hparams: Any) -> Any:
        return getattr(build(hparams), derivative_name)(value)

    by_torch = {torch: torch for torch in constructor_keywords.values()}  # both wrappers take torch's names
    return _functions(layer, forward, derivative, None,
                      f"{cls.__name__}.{forward_name} with {cls.__name__}.{derivative_name}",
                      keywords=(by_torch, by_torch), argument=_first_argument(getattr(cls, derivative_name), skip=1))


@functools.lru_cache(maxsize=64)  # asked once per layer by discovery: the probes run once per module
def adapt_derivatives(module: ModuleType) -> dict[str, LayerFunctions]:
    """The elementwise activations ``module`` writes with derivatives, by layer (functions first)."""
    return {**_class_pairs(module), **_function_pairs(module)}
