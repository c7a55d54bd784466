"""What an implementation supports, as the case expansion needs it (:class:`refcheck.cases.Capabilities`).

A hyperparameter the user's code has no argument for is supported at one value only (torch's
default, or the value the code fixes); the adapter's constraint adds limits that involve several
values or the shapes. Expansion then generates cases inside that space, and configurations outside
it are summarised in one line per layer (:func:`unsupported_summary`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..cases import ALL_SUPPORTED, Capabilities, Case
from ..specs import layer_spec
from .contract import LayerFunctions, required_by_torch, unsupported_labels, unsupported_reason

__all__ = ["capabilities_of", "describe_capabilities", "unsupported_summary", "value_check"]


def capabilities_of(functions: LayerFunctions) -> Capabilities:
    """The supported space of one layer's functions (ALL_SUPPORTED when nothing limits it)."""
    spec = layer_spec(functions.layer)
    takes_all = functions.accepted is None or set(spec.hyper_names) <= set(functions.accepted)
    if takes_all and functions.constraint is None and not functions.fixed:
        return ALL_SUPPORTED

    value_supported = value_check(functions.layer, functions.accepted, functions.fixed)

    def case_reason(case: Case) -> str | None:
        try:
            return unsupported_reason(functions, case.hparam_map, case.shape_map)
        except Exception:  # noqa: BLE001 - a constraint that cannot judge a case keeps it
            return None

    return Capabilities(value_supported, case_reason)


def value_check(layer: str, accepted: frozenset[str] | None, fixed: Mapping[str, Any]
                ) -> Callable[[str, Any], bool]:
    """``(hyperparameter, value) -> supported`` from what a forward accepts and the values its code
    fixes: plain data, so that it can be rebuilt outside the process that loaded the code."""
    spec = layer_spec(layer)

    def value_supported(name: str, value: Any) -> bool:
        if accepted is None or name in accepted:
            return True
        if name in fixed:
            return value == fixed[name] or fixed[name] == "same"
        default = spec.hyper(name).default
        return callable(default) or value == default

    return value_supported


def _refused(functions: LayerFunctions, hyper: Any, values: Iterable[Any]) -> list[tuple[Any, str]]:
    """(value, why) for each of ``values`` the functions' constraint rules out, the others at their defaults."""
    if functions.constraint is None:
        return []
    spec = layer_spec(functions.layer)
    defaults: dict[str, Any] = {}
    for other in spec.hypers:
        defaults[other.name] = other.default_for(defaults)
    refused = []
    for value in values:
        value = tuple(value) if isinstance(value, list) else value
        if hyper.pair and isinstance(value, int) and not isinstance(value, bool):
            value = (value,) * hyper.arity
        try:
            labels = unsupported_labels(functions, {**defaults, hyper.name: value})
        except Exception:  # noqa: BLE001, S112 - a constraint that needs more than hyperparameters says nothing here
            continue
        if labels and value not in [v for v, _ in refused]:
            refused.append((value, labels[-1]))
    return refused


def unsupported_summary(functions: LayerFunctions, cases: Iterable[Case]) -> tuple[int, str]:
    """(count, one line) for the configurations of ``cases`` the implementation does not support."""
    counts: Counter[str] = Counter()
    total = 0
    for case in cases:
        labels = unsupported_labels(functions, case.hparam_map, case.shape_map)
        if labels:
            total += 1
            counts.update(labels)
    if not total:
        return 0, ""
    name = (functions.origin or functions.layer).split(": ", 1)[-1]
    return total, f"not supported by {name}: {', '.join(label for label, _ in counts.most_common())}: " \
                  f"{total} configuration{'s' if total != 1 else ''}"


def describe_capabilities(functions: LayerFunctions, values: Mapping[str, Iterable[Any]] | None = None) -> list[str]:
    """One line per hyperparameter: all values, the one value supported, or (``values``: the case
    files' values of each hyperparameter) the values the adapter's own limits leave out."""
    spec = layer_spec(functions.layer)
    lines = []
    for hyper in spec.hypers:
        if functions.accepted is None or hyper.name in functions.accepted:
            refused = _refused(functions, hyper, (values or {}).get(hyper.name, ()))
            lines.append(f"{hyper.name}: any value" if not refused else
                         f"{hyper.name}: any value but {', '.join(repr(v) for v, _ in refused)} ({refused[0][1]})")
        elif hyper.name in functions.fixed:
            found = "values" if hyper.name == "dim" else "shapes"  # a softmax's axis does not change its shape
            lines.append(f"{hyper.name}: {functions.fixed[hyper.name]!r} only (fixed by the code, found from output "
                         f"{found})")
        elif required_by_torch(hyper):  # torch has no default: the code fixes a value the probe could not tell
            lines.append(f"{hyper.name}: no argument for it, and the value the code fixes could not be told from a "
                         f"probe call: every case needs one (say it in a mapping: fixed = {{ {hyper.name} = ... }})")
        else:
            default = "torch's default" if callable(hyper.default) else repr(hyper.default)
            lines.append(f"{hyper.name}: {default} only (no argument for it)")
    return lines
