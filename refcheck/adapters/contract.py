"""The implementation contract: one layer's forward/backward pair and how it is called.

``LayerFunctions`` is what every way of providing a layer ends in (contract-style functions found
by name, the CS231n and object adapters); the execution stage calls them through the helpers here.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from ..specs import LAYERS, LayerSpec, layer_spec
from .cs231n_names import cs231n_owns

__all__ = ["ForeignResult", "LayerFunctions", "Misfit", "accepted_keywords", "call_forward_backward", "contract_layers",
           "gradient_tuple", "hparams_for_call", "module_label", "named_outputs", "required_by_torch", "takes_param_dict",
           "user_name", "unsupported_labels", "unsupported_reason", "upstream_for_backward"]


class Misfit(TypeError):
    """The user's code does not fit the adapter calling it (a function that returns only the loss
    where the loss and its gradient were expected): discovery rejects it instead of reporting a bug."""


@dataclass(frozen=True)
class LayerFunctions:
    """The forward/backward pair of one layer, in the contract's calling convention.

    accepted: the hyperparameter keywords forward accepts (None: any, e.g. ``**kwargs``).
        A hyperparameter outside this set is supported only at its torch default (or at the value
        in ``fixed``).
    constraint: optional extra limit, ``constraint(hparams) -> reason | None``; a reason
        means the case is outside what the implementation supports (e.g. an adapter that only has
        square strides). ``hparams`` also holds ``<tensor>_shape`` entries (``weight_shape``).
    origin: where the functions come from, in the user's terms ("mymod.conv2d_forward",
        "class Conv").
    backward: None when the module has a forward but no backward; ``missing`` then names the
        function (or method) that is absent, e.g. ``"relu_backward"``.
    adapter: how the user's code is called ("contract", "cs231n", "object", "mapping").
    layout: the layouts found on the probe case ("NCHW", "NHWC, weight (kh, kw, C, F)", ...).
    fixed: hyperparameters the code has no argument for but implements at a value other than
        torch's default (found from output shapes, or torch.nn's class default).
    notes: anything else a reader of the report should know (a gradient recovered from an SGD step).
    """

    layer: str
    forward: Callable[..., Any]
    backward: Callable[..., Any] | None
    accepted: frozenset[str] | None
    constraint: Callable[[Mapping[str, Any]], str | None] | None = None
    origin: str = ""
    missing: str = ""
    adapter: str = "contract"
    layout: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # An adapter's functions name it in their origin ("cs231n: batchnorm_forward", "object: Dense").
        style = self.origin.split(": ", 1)[0] if ": " in self.origin else ""
        if self.adapter == "contract" and style in ("cs231n", "object", "coursera"):
            object.__setattr__(self, "adapter", style)

    @property
    def description(self) -> str:
        """One line for reports: the user's function or class, the adapter and the layout."""
        parts = [self.origin or self.layer, f"adapter {self.adapter}"]
        if self.layout:
            parts.append(f"layout {self.layout}")
        # A value fixed for a hyperparameter the code takes as an argument is not fixed at all.
        fixed = {k: v for k, v in self.fixed.items() if self.accepted is not None and k not in self.accepted}
        if fixed:
            parts.append("fixed " + ", ".join(f"{k}={v!r}" for k, v in fixed.items()))
        return "; ".join(parts)


@dataclass(frozen=True)
class ForeignResult:
    """Stands for a result that is not a numeric numpy array (a list, another library's tensor...).

    Only its type name crosses from the implementation's process to the trusted side.
    """

    type_name: str


def accepted_keywords(function: Callable[..., Any]) -> frozenset[str] | None:
    """Keyword parameters of a function; None if it takes ``**kwargs`` (accepts anything)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters
                     if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))


def takes_param_dict(function: Callable[..., Any]) -> bool:
    """A CS231n-style signature (``dropout_forward(x, dropout_param)``): a ``*_param`` argument, which
    no contract forward has. Such a function is left to the CS231n adapter even under a contract name."""
    try:
        return any(name.endswith("_param") for name in inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
def module_label(module: ModuleType) -> str:
    """A module's name as its author knows it (a file loaded by path: the file's stem)."""
    name = module.__name__
    if name.startswith("refcheck_impl_"):
        return name.removeprefix("refcheck_impl_").rsplit("_", 1)[0]
    return name


def contract_layers(module: ModuleType) -> dict[str, LayerFunctions]:
    """Layers a module implements with the contract's ``<layer>_forward`` / ``<layer>_backward``.

    A forward without its backward is still a layer (its output can be checked): ``backward`` is
    None and ``missing`` names the absent function. An update rule is one ``<rule>_step`` function,
    held as ``forward`` (with no backward, and none missing).
    """
    found = {}
    for name, spec in LAYERS.items():
        if spec.is_update_rule:
            step = getattr(module, f"{name}_step", None)
            if callable(step):
                found[name] = LayerFunctions(name, step, None, accepted_keywords(step),
                                             origin=f"{module_label(module)}.{name}_step")
            continue
        forward = getattr(module, f"{name}_forward", None)
        backward = getattr(module, f"{name}_backward", None)
        if callable(forward) and not takes_param_dict(forward) and not cs231n_owns(module, name):
            if callable(backward):
                backward = _gradients_spread(spec, backward)
            found[name] = LayerFunctions(name, forward, backward if callable(backward) else None,
                                         accepted_keywords(forward), origin=f"{module_label(module)}.{name}_forward",
                                         missing="" if callable(backward) else f"{name}_backward")
    return found


def positional_parameters(function: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The parameters ``function`` takes by position, in order; None when it has no signature."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def _gradients_spread(spec: LayerSpec, backward: Callable[..., Any]) -> Callable[..., Any]:
    """``backward(douts, cache)`` for a multi-output layer's backward written as
    ``backward(dh, dc, cache)``: one upstream gradient per argument (the contract passes them as
    one tuple). Any other backward is returned as it is."""
    count = len(spec.differentiable_outputs)
    parameters = positional_parameters(backward) if count > 1 else None
    if parameters is None or len(parameters) != count + 1 or any(
            p.default is not inspect.Parameter.empty for p in parameters):
        return backward

    @functools.wraps(backward)
    def spread(douts: Any, cache: Any) -> Any:
        return backward(*(douts if isinstance(douts, tuple) else (douts,)), cache)

    del spread.__wrapped__  # its signature is the contract's, (douts, cache)
    return spread


def user_name(origin: str, fallback: str = "forward") -> str:
    """The user's function or class in an origin ("cs231n: affine_forward" -> "affine_forward",
    "object: Conv" -> "Conv"), for messages in the user's terms."""
    return origin.split(": ", 1)[-1] if origin else fallback


def _user_name(functions: LayerFunctions) -> str:
    """The user's function or class, as the reports name it."""
    return user_name(functions.origin, f"{functions.layer}_forward")


_REQUIRED_NAMES = frozenset({"kernel_size", "norm_type", "output_size", "dim"})


def required_by_torch(hyper: Any) -> bool:
    """torch has no default for it (a pool's kernel_size, softmax's dim): the spec's None default
    stands for 'required', not for a value (unlike embedding's padding_idx=None)."""
    return hyper.default is None and hyper.name in _REQUIRED_NAMES


def _same_as(supported: Any, value: Any, hparams: Mapping[str, Any], shapes: Mapping[str, Any] | None) -> bool:
    """Whether a case value equals what the code implements (an explicit pad equal to 'same' counts)."""
    if value == supported:
        return True
    if supported == "same" and isinstance(value, tuple) and shapes and shapes.get("weight") is not None:
        dilation = hparams.get("dilation", (1, 1))
        totals = [d * (k - 1) for d, k in zip(dilation, shapes["weight"][-2:])]
        return all(t % 2 == 0 and t // 2 == v for t, v in zip(totals, value)) and hparams.get("stride") == (1, 1)
    return False


def unsupported_labels(functions: LayerFunctions, hparams: Mapping[str, Any],
                       shapes: Mapping[str, Any] | None = None) -> list[str]:
    """Every limit of the implementation that a configuration crosses, as short labels.

    A hyperparameter forward does not accept is supported only at torch's default (or at the value
    the code fixes, see ``LayerFunctions.fixed``); ``constraint`` adds the adapter's own limits.
    Labels read like ``dilation != (1, 1)`` so that many configurations summarise in one line.
    """
    spec = layer_spec(functions.layer)
    labels = []
    if functions.accepted is not None:
        for hyper in spec.hypers:
            if hyper.name in functions.accepted or hyper.name not in hparams:
                continue
            supported = functions.fixed.get(hyper.name, hyper.default_for(hparams))
            if supported is None and required_by_torch(hyper):  # the value the code fixes is not known
                labels.append(f"{hyper.name} (no argument for it)")
            elif not _same_as(supported, hparams[hyper.name], hparams, shapes):
                labels.append(f"{hyper.name} != {supported!r}")
    if functions.constraint is not None and not labels:
        extended = {**hparams, **{f"{name}_shape": shape for name, shape in (shapes or {}).items()}}
        reason = functions.constraint(extended)
        if reason:
            labels.append(reason.removeprefix("unsupported: "))
    return labels


def unsupported_reason(functions: LayerFunctions, hparams: Mapping[str, Any],
                       shapes: Mapping[str, Any] | None = None) -> str | None:
    """Why a case needs something the implementation cannot take (None if it can run it).

    The reason names the user's function or class and its missing argument.
    """
    spec = layer_spec(functions.layer)
    if functions.accepted is not None:
        for hyper in spec.hypers:
            if hyper.name in functions.accepted or hyper.name not in hparams:
                continue
            supported = functions.fixed.get(hyper.name, hyper.default_for(hparams))
            if supported is None and required_by_torch(hyper):
                return (f"unsupported: {_user_name(functions)} has no argument for {hyper.name}, which torch "
                        f"requires, and the value it fixes is not known (say it in a mapping: fixed = "
                        f"{{ {hyper.name} = ... }}); case needs {hyper.name}={hparams[hyper.name]!r}")
            if not _same_as(supported, hparams[hyper.name], hparams, shapes):
                how = "fixes" if hyper.name in functions.fixed else "has no argument for"
                return (f"unsupported: {_user_name(functions)} {how} {hyper.name} "
                        f"(works as {hyper.name}={supported!r}); case needs {hyper.name}={hparams[hyper.name]!r}")
    labels = unsupported_labels(functions, hparams, shapes)
    if labels:
        return f"unsupported: {_user_name(functions)}: {labels[-1]}"
    return None


def gradient_tuple(grads: Any, count: int | None = None) -> tuple[Any, ...]:
    """backward's return value as a tuple (one-input layers may return a single array).

    ``count``: how many gradients the layer has. A one-gradient layer's backward that returns a
    list of any other length returned its gradient as a (nested) list, not several gradients.
    """
    if count == 1 and isinstance(grads, list) and len(grads) != 1:
        return (grads,)
    return tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)


def upstream_for_backward(spec: LayerSpec, gradients: Mapping[str, Any]) -> Any:
    """What backward receives: the one upstream gradient, or a tuple of them in output order.

    ``gradients`` maps differentiable output names to arrays (absent outputs give None); each is
    copied, so the caller's arrays stay pristine.
    """
    copies = [None if gradients.get(name) is None else np.array(gradients[name], copy=True)
              for name in spec.differentiable_outputs]
    return copies[0] if len(copies) == 1 else tuple(copies)


def named_outputs(spec: LayerSpec, returned: Any, origin: str = "") -> dict[str, Any]:
    """forward's first return value by output name; ValueError when a multi-output layer's is not
    a tuple of the right length (naming the user's function or class from ``origin``)."""
    if not spec.multi_output:
        return {spec.outputs[0]: returned}
    if not isinstance(returned, (tuple, list)) or len(returned) != len(spec.outputs):
        got = f"a tuple of {len(returned)}" if isinstance(returned, (tuple, list)) else type(returned).__name__
        if origin.startswith("object: "):
            raise ValueError(f"{user_name(origin)}.forward must return ({', '.join(spec.outputs)}); it returned {got}")
        raise ValueError(f"{user_name(origin)} must return (({', '.join(spec.outputs)}), cache); "
                         f"its first item is {got}")
    return dict(zip(spec.outputs, returned))


def call_forward_backward(spec: LayerSpec, functions: LayerFunctions, tensors: Mapping[str, Any],
                          hparams: Mapping[str, Any], gradients: Mapping[str, Any]) -> dict[str, Any]:
    """Run forward then backward on fresh copies: ``{"output": ..., "grad_<tensor>": ...}``.

    ``gradients``: the upstream gradient of each differentiable output, by output name.
    Whatever the implementation raises propagates to the caller.
    """
    handed = [None if tensors[name] is None else np.array(tensors[name], copy=True) for name in spec.tensors]
    returned, cache = functions.forward(*handed, **hparams)
    outputs = named_outputs(spec, returned, functions.origin)
    grads = gradient_tuple(functions.backward(upstream_for_backward(spec, gradients), cache))
    return {**outputs, **{f"grad_{name}": grad for name, grad in zip(spec.differentiable, grads)}}


def hparams_for_call(functions: LayerFunctions, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords to pass: every hyperparameter forward accepts."""
    if functions.accepted is None:
        return dict(hparams)
    return {name: value for name, value in hparams.items() if name in functions.accepted}
