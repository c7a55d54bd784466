"""Discovery: the user's modules in, one LayerFunctions per layer they implement out, plus what was
rejected and why.

For each layer, candidates are tried in order: a mapping entry, contract-style
``<layer>_forward`` / ``<layer>_backward`` functions, classes of the layer's name family, then
CS231n-style functions. Each candidate is called once on the layer's probe case in each layout
worth trying (:mod:`refcheck.adapters.probe`); the first that fits is used. A candidate that does
not fit any layout (wrong signature, wrong return value) is rejected with the reason, instead of
becoming rows of errors. One that fits by signature but raises is kept: its error is a finding.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from ..specs import LAYERS, layer_spec
from .construct import Constructor, form_choices
from .contract import LayerFunctions, accepted_keywords, contract_layers, user_name
from .coursera import COURSERA_LAYOUTS, adapt_coursera, written_for_the_course
from .cs231n import adapt_cs231n
from .cs231n_norm import adapt_cs231n_norm
from .cs231n_optim import adapt_cs231n_optim
from .cs231n_seqloss import adapt_cs231n_seqloss
from .derivatives import adapt_derivatives
from .objects_convnorm import CONVNORM_CLASS_FAMILIES, adapt_objects_convnorm, convnorm_class_functions
from .objects_seqloss import adapt_objects_seqloss
from .layouts import Layout, candidate_layouts, with_layout
from .mapping import LayerMapping
from .mapped_convention import mapped_convention
from .mapped_keywords import keyword_functions
from .names import class_layer, public_names
from .objects import BACKWARD_METHODS, FORWARD_METHODS, _PARAMETRIC, discover_layer_classes, method, object_functions
from .probe import (ProbeOutcome, asymmetric_probe_case, has_probe_case, leading_axes_case, mode_probe_cases,
                    probe)

__all__ = ["Discovery", "Rejected", "discover"]


@dataclass(frozen=True)
class Rejected:
    """A function or class that looked like a layer but does not fit it."""

    name: str
    layer: str
    reason: str


@dataclass
class Discovery:
    """What discovery found in the user's modules.

    layers: contract layer -> the functions used for it.
    rejected: candidates that did not fit, with the reason.
    available: the functions and classes the modules define (for messages about missing layers).
    orphans: backward functions without their forward ("relu_backward has no relu_forward").
    probed: layer -> a note on what the probe call decided (or why a kept candidate raised).
    """

    layers: dict[str, LayerFunctions] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    available: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    probed: dict[str, str] = field(default_factory=dict)


# A candidate: its user-facing name, a builder (layout, forms) -> LayerFunctions, the form choices,
# whether its name is exact (never rejected), the layouts to try, and whether its name is the
# layer's in a recognised style (a class Conv2d, CS231n's conv_forward_naive): a call of it that
# takes the arguments and returns something that does not fit is then a finding, not a misfit.
@dataclass
class _Candidate:
    name: str
    build: Callable[[Layout, Mapping[str, str]], LayerFunctions]
    forms: list[dict[str, str]] = field(default_factory=lambda: [{}])
    exact: bool = False
    layouts: list[Layout] | None = None
    named: bool = False
    stated: dict[str, Any] = field(default_factory=dict)  # a mapping's ``fixed``: wins over a probe's findings
    keep: bool = False  # named by a mapping: checked in its first form even if no form fits the probe


def _object_candidate(layer: str, cls: Any, entry: LayerMapping | None = None) -> _Candidate:
    constructor = Constructor.of(cls, renames=entry.args if entry else None,
                                 offsets=entry.offsets if entry else None, parametric=layer in _PARAMETRIC)

    def build(layout: Layout, forms: Mapping[str, str]) -> LayerFunctions:
        functions = object_functions(layer, constructor.with_forms(forms), layout,
                                     gradient_names={k: (v,) for k, v in (entry.gradients if entry else {}).items()},
                                     parameter_names=entry.parameters if entry else None,
                                     learning_rate=entry.learning_rate if entry else 1.0)
        return functions if not entry else replace(functions, adapter="mapping", origin=f"object: {cls.__name__}")

    return _Candidate(f"class {cls.__name__}", _ObjectBuild(build), form_choices(constructor), exact=entry is not None,
                      named=True)


class _ObjectBuild:
    """Marks the builder of a class candidate (classes are always probed: construction is a guess)."""

    def __init__(self, build: Callable[[Layout, Mapping[str, str]], LayerFunctions]) -> None:
        self.build = build

    def __call__(self, layout: Layout, forms: Mapping[str, str]) -> LayerFunctions:
        return self.build(layout, forms)


def _function_candidate(functions: LayerFunctions, name: str, exact: bool, named: bool = False,
                        layouts: list[Layout] | None = None) -> _Candidate:
    return _Candidate(name, lambda layout, forms: functions, exact=exact, layouts=layouts, named=named)


def _mapping_candidate(layer: str, entry: LayerMapping, namespace: Mapping[str, Any]) -> _Candidate | None:
    if entry.class_name:
        cls = namespace.get(entry.class_name)
        if cls is None:
            return None
        if layer in CONVNORM_CLASS_FAMILIES:  # norms, dropout, embedding...: built as their own adapter builds them
            functions = replace(convnorm_class_functions(layer, [(entry.class_name, cls)]), adapter="mapping")
            return _function_candidate(functions, f"class {entry.class_name}", exact=True)
        return _object_candidate(layer, cls, entry)
    if entry.function:
        forward = entry_forward = namespace.get(entry.function)
        backward = namespace.get(entry.backward) if entry.backward else None
        if forward is None:
            return None
        if entry.offsets:
            forward = _offset(forward, entry.offsets)
        functions = LayerFunctions(layer, forward, backward, accepted_keywords(entry_forward), origin=entry.function,
                                   missing="" if backward else (entry.backward or f"a backward for {entry.function}"),
                                   adapter="mapping")
        functions = mapped_convention(functions, entry_forward, backward, _mapped_layouts(layer, entry))
        if entry.offsets and functions.adapter != "mapping":  # a CS231n form: its forward takes the case's keywords
            functions = replace(functions, forward=_offset(functions.forward, entry.offsets))
        keywords = None if functions.adapter != "mapping" or not has_probe_case(layer) else keyword_functions(
            layer, entry_forward, backward, entry.args, entry.offsets, entry.function, functions.missing)
        if keywords is not None:  # its own keyword names or int forms: probed form by form, in the mapped layout
            build, forms = keywords
            layouts = _mapped_layouts(layer, entry) or candidate_layouts(layer)[:1]
            return _Candidate(entry.function, build, forms=forms, layouts=layouts, named=True, keep=True)
        return _function_candidate(functions, entry.function, exact=True)
    return None


def _offset(forward: Callable[..., Any], offsets: Mapping[str, int]) -> Callable[..., Any]:
    """forward with the mapping's convention offsets added to its hyperparameters."""

    def shifted(*tensors: Any, **hparams: Any) -> Any:
        for name, offset in offsets.items():
            value = hparams.get(name)
            if isinstance(value, tuple):
                hparams[name] = tuple(v + offset for v in value)
            elif isinstance(value, int) and not isinstance(value, bool):
                hparams[name] = value + offset
        return forward(*tensors, **hparams)

    return shifted


def _mapped_layouts(layer: str, entry: LayerMapping | None) -> list[Layout] | None:
    if entry is None or not (entry.layout or entry.weight_layout or entry.single_sample):
        return None
    default = candidate_layouts(layer)[0]
    return [Layout(entry.layout or default.activations, entry.weight_layout or default.weight, entry.single_sample)]


def _namespace(modules: Iterable[ModuleType]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for module in modules:
        for name, value in vars(module).items():
            merged.setdefault(name, value)
    return merged


def _candidates(layer: str, modules: list[ModuleType], namespace: Mapping[str, Any],
                mapping: Mapping[str, LayerMapping]) -> list[_Candidate]:
    candidates = []
    entry = mapping.get(layer)
    if entry is not None:
        mapped = _mapping_candidate(layer, entry, namespace)
        if mapped is not None:
            mapped.layouts = _mapped_layouts(layer, entry)
            candidates.append(mapped)
    for module in modules:
        contract = contract_layers(module).get(layer)
        if contract is not None:
            candidates.append(_function_candidate(contract, f"{layer}_forward", exact=True))
    seen: list[Any] = []
    for module in modules:
        registry = getattr(module, "REFCHECK_LAYERS", None)
        if registry is not None and layer in discover_layer_classes(module):
            candidates.append(_object_candidate(layer, registry[layer]))
        for name, cls in sorted(vars(module).items()):
            if inspect.isclass(cls) and class_layer(name) == layer and cls not in seen:
                seen.append(cls)
                candidates.append(_object_candidate(layer, cls))
    for module in modules:
        styles = []
        adapted = adapt_cs231n(module).get(layer)
        if adapted is not None:
            styles.append(_function_candidate(adapted, user_name(adapted.origin), exact=False, named=True))
        course = adapt_coursera(module).get(layer)
        if course is not None:  # probed in the course's layouts only (channels last, W (f, f, C, F))
            styles.append(_function_candidate(course, user_name(course.origin), exact=False, named=True,
                                              layouts=COURSERA_LAYOUTS[layer]))
            if written_for_the_course(module, course):
                # Its arguments carry the course's names: when neither style fits the probe, its
                # cases should show its own error in the course's layout, not the CS231n call's.
                styles.reverse()
        candidates += styles
        derived = adapt_derivatives(module).get(layer)
        if derived is not None:  # an activation and its derivative (or the course's (dA, cache) backward)
            candidates.append(_function_candidate(derived, user_name(derived.origin), exact=False, named=True))
        # The later assignments' adapters fix their own layout: taken as they are, without a probe.
        later = {**adapt_cs231n_norm(module), **adapt_cs231n_seqloss(module, adapt_cs231n(module).get("linear")),
                 **adapt_objects_seqloss(module), **adapt_cs231n_optim(module), **adapt_objects_convnorm(module)}
        adapted = later.get(layer)
        if adapted is not None:
            candidates.append(_function_candidate(adapted, adapted.origin.split(": ")[-1], exact=True))
    if entry is not None and entry.fixed:  # whichever candidate is taken: the mapping names no function then
        for candidate in candidates:
            _with_mapped_fixed(candidate, dict(entry.fixed))
    return candidates


def _with_mapped_fixed(candidate: _Candidate, fixed: dict[str, Any]) -> None:
    """The mapping's ``fixed`` values on what the candidate builds (they win over what a probe finds)."""
    inner = candidate.build

    def build(layout: Layout, forms: Mapping[str, str]) -> LayerFunctions:
        functions = inner(layout, forms)
        return replace(functions, fixed={**functions.fixed, **fixed})

    candidate.build = _ObjectBuild(build) if isinstance(inner, _ObjectBuild) else build
    candidate.stated = fixed


def _try(layer: str, candidate: _Candidate) -> tuple[LayerFunctions | None, str, LayerFunctions | None]:
    """(fitting functions, first misfit reason, a variant that raised) for one candidate.

    Functions named exactly (contract-style ``<layer>_forward``, or a function named in a mapping)
    are taken as they are, without a probe call: the contract (torch layouts) or the mapping says
    all there is, and a layout mistake in them is a finding for the diagnosis, not something to
    adapt to. Classes and other-style functions are probed in each candidate layout.
    """
    if (candidate.exact and not isinstance(candidate.build, _ObjectBuild)) or not has_probe_case(layer):
        # (A layer without a probe case, a norm or a recurrent one, is taken as its adapter builds it.)
        layout = (candidate.layouts or candidate_layouts(layer))[0]
        return _with_fixed_values(with_layout(candidate.build(layout, {}), layout), candidate.stated), "", None
    first_reason, raised, raised_after_forward = "", None, False
    for layout in candidate.layouts or candidate_layouts(layer):
        for forms in candidate.forms:
            try:
                functions = with_layout(candidate.build(layout, forms), layout)
            except Exception as error:  # noqa: BLE001 - a class that cannot even be inspected
                first_reason = first_reason or f"{type(error).__name__}: {error}"
                continue
            outcome = probe(functions)
            if outcome.fits:
                functions, outcome = _widest_forms(layer, candidate, layout, forms, functions, outcome)
                functions = _flat_inputs_only(functions)
                return replace(functions, fixed={**functions.fixed, **outcome.fixed, **candidate.stated}), "", None
            first_reason = first_reason or outcome.reason
            # Checked anyway when nothing fits: preferably a layout whose forward gave the right
            # output, so that the cases show the backward's mistake, not a forward in the wrong layout.
            kept = outcome.raised or (candidate.named and outcome.ran)
            if kept and (raised is None or (outcome.forward_fits and not raised_after_forward)):
                raised = replace(functions, notes=(f"probe call: {outcome.reason}",))
                raised_after_forward = outcome.forward_fits
                if outcome.forward_fits:
                    first_reason = outcome.reason
            if outcome.timed_out:  # another layout would hang as long: its cases show it, each timed
                return None, outcome.reason, replace(functions, notes=(f"probe call: {outcome.reason}",))
    if raised is None and candidate.keep:  # the mapping says this is the layer: its cases show what goes wrong
        layout = (candidate.layouts or candidate_layouts(layer))[0]
        functions = with_layout(candidate.build(layout, candidate.forms[0]), layout)
        raised = replace(functions, notes=(f"probe call: {first_reason}",) if first_reason else ())
    return None, first_reason, raised


def _with_fixed_values(functions: LayerFunctions, stated: Mapping[str, Any]) -> LayerFunctions:
    """Functions taken as they are, with the values their code fixes for the hyperparameters its
    forward has no argument for (a pool without a stride argument that steps by one), found on a
    probe call; a forward that does not fit changes nothing (its cases show why)."""
    spec = layer_spec(functions.layer)
    if (functions.accepted is None or set(spec.hyper_names) <= set(functions.accepted)
            or not has_probe_case(functions.layer)):
        return functions
    outcome = probe(functions)
    if not (outcome.fits or outcome.forward_fits) or not outcome.fixed:  # (a backward's mistake is a finding)
        return functions
    return replace(functions, fixed={**functions.fixed, **outcome.fixed, **stated})


def _widest_forms(layer: str, candidate: _Candidate, layout: Layout, forms: Mapping[str, str],
                  functions: LayerFunctions, outcome: ProbeOutcome) -> tuple[LayerFunctions, ProbeOutcome]:
    """The fitting functions, with each argument probed as one int given (h, w) pairs instead when
    the code also takes a pair whose axes differ (``stride=1`` as a default, ``_pair(stride)`` in
    the code): its output and gradient shapes on such a probe case are torch's, so the code
    supports non-square values, which one int could not pass. A padding given as pairs is probed
    with 'same' and 'valid' too; code that does not take them has those cases left out."""
    for target, form in forms.items():
        case = asymmetric_probe_case(layer, target) if form == "int" else None
        if case is None:
            continue
        trial = {**forms, target: "pair"}
        try:
            widened = with_layout(candidate.build(layout, trial), layout)
        except Exception:  # noqa: BLE001 - the int form fits: keep it
            continue
        asymmetric = probe(widened, case)
        if asymmetric.fits and not asymmetric.fixed and (again := probe(widened)).fits:
            forms, functions, outcome = trial, widened, again
    for target, form in forms.items():
        # A padding passed as pairs gets the padding modes ('same', 'valid') only if the code takes them.
        cases = mode_probe_cases(layer, target) if form == "pair" else []
        if cases and not all((o := probe(functions, case)).fits and not o.fixed for case in cases):
            forms = {**forms, target: "numeric pair"}
            functions = replace(with_layout(candidate.build(layout, forms), layout), fixed=functions.fixed)
    return functions, outcome


def _flat_inputs_only(functions: LayerFunctions) -> LayerFunctions:
    """A linear whose forward fits on (N, in_features) inputs but not on (N, L, in_features) ones (it
    flattens every axis after the first, as textbook Affine classes do): its cases with leading axes
    are left out, named, instead of erroring in its code. A backward that fails there alone is a
    finding, checked."""
    case = leading_axes_case(functions.layer)
    outcome = probe(functions, case) if case is not None else None
    if outcome is None or outcome.fits or outcome.forward_fits:  # a backward wrong there is a finding
        return functions
    reason = (f"{user_name(functions.origin)} takes (N, in_features) inputs only (torch's linear keeps the "
              "leading axes of (N, *, in_features))")
    inner = functions.constraint

    def constraint(hparams: Mapping[str, Any]) -> str | None:
        shape = hparams.get("input_shape")
        return (inner(hparams) if inner else None) or (reason if shape is not None and len(shape) != 2 else None)

    return replace(functions, constraint=constraint)


def _class_without_backward(layer: str, modules: list[ModuleType]) -> list[Rejected]:
    rejected, seen = [], set()
    for module in modules:
        for name, cls in sorted(vars(module).items()):
            if inspect.isclass(cls) and class_layer(name) == layer and f"class {name}" not in seen:
                seen.add(f"class {name}")
                if not method(cls, FORWARD_METHODS):
                    rejected.append(Rejected(f"class {name}", layer, "has no forward method"))
                elif not method(cls, BACKWARD_METHODS):
                    rejected.append(Rejected(f"class {name}", layer,
                                             f"has {method(cls, FORWARD_METHODS)} but no backward method"))
    return rejected


def discover(modules: list[ModuleType], mapping: Mapping[str, LayerMapping] | None = None,
             layers: Iterable[str] | None = None) -> Discovery:
    """Find every layer the modules implement (or only ``layers``), probing each candidate."""
    mapping = mapping or {}
    namespace = _namespace(modules)
    found = Discovery(available=sorted({n for m in modules for n in public_names(m)}))
    for layer in layers or LAYERS:
        found.rejected += _class_without_backward(layer, modules)
        fallback, fallback_name, misfits = None, "", []
        for candidate in _candidates(layer, modules, namespace, mapping):
            functions, reason, raised = _try(layer, candidate)
            if functions is not None:
                found.layers[layer] = functions
                found.probed.pop(layer, None)
                break
            if fallback is None and (candidate.exact or raised is not None):
                fallback = raised or candidate.build((candidate.layouts or candidate_layouts(layer))[0],
                                                     candidate.forms[0])
                fallback_name = candidate.name
                found.probed[layer] = f"{candidate.name}: probe call: {reason}"
                continue
            misfits.append(Rejected(candidate.name, layer, reason))
        if layer not in found.layers and fallback is not None:
            # It fits by name or signature but fails on the probe: check it, so the failure shows.
            found.layers[layer] = fallback
        found.rejected += [r for r in misfits if r.name != fallback_name]
        if layer in found.layers and found.layers[layer].adapter == "derivative":
            # Its class without a backward, or its bare (A, cache) forward, is what was used.
            found.rejected = [r for r in found.rejected if r.layer != layer]
            continue
        for module in modules:
            if callable(getattr(module, f"{layer}_backward", None)) and not callable(
                    getattr(module, f"{layer}_forward", None)):
                found.orphans.append(f"{layer}_backward has no {layer}_forward")
    for entry in mapping.values():
        if entry.layer not in found.layers:
            wanted = entry.class_name or entry.function
            found.rejected.append(Rejected(wanted or "(mapping)", entry.layer,
                                           f"named in the mapping ({entry.source}) but not found in the code"))
    return found
