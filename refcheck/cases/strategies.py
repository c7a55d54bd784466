"""Hypothesis strategies for refcheck cases, public as ``refcheck.strategies``.

:func:`configurations` draws valid configurations of a layer: each parameter of the layer's case
space (the shipped case file, or one you pass) from a domain around the file's values, and the
configuration is built by :func:`refcheck.cases.expand.build_case`, the function the sweep's
expansion uses, so torch's validity rules are defined once (a configuration torch rejects is
rejected here too). The window parameters (kernel_size, stride, padding, dilation, output_size)
reach one step beyond the file's largest value, and the shapes of the dense, activation, loss, conv
and pooling layers are drawn with the file's ranks and at most its largest sizes; the rest
(reductions, slopes, the normalisation, recurrent and attention shapes) are drawn from the file's
values. Every input kind of the layer can be drawn (``values``), so the special values
(exact zeros, ties, values below -1e9, near the dtype's maximum, around 1e-30, probabilities at 0
and 1) mix with ordinary ones. Hypothesis shrinks towards the first value of each domain: smaller
sizes and windows, stride 1, batch 1, one channel, base seed 0.

:func:`special_floats` and :func:`arrays` draw values and arrays of the same kinds, for tests of
your own functions.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..specs import LAYERS, InvalidConfig
from .case import DTYPES, Case
from .expand import ALL_SUPPORTED, Capabilities, build_case, value_for_check
from .inputs import VALUE_KINDS, make_inputs
from .spaces import Space, load_spaces

__all__ = ["MAX_ELEMENTS", "Drawn", "arrays", "case_inputs", "cases", "configurations", "default_space",
           "parameter_domains", "probabilities", "special_floats"]

MAX_ELEMENTS = 4096
"""Default cap on a case's total number of tensor elements."""
MAX_BASE_SEED = 2**16 - 1

# Parameters drawn from a range around the case file's values: (smallest value, steps beyond the file's largest).
_WINDOW = {"kernel_size": (1, 1), "stride": (1, 1), "padding": (0, 1), "dilation": (1, 1), "output_size": (1, 1),
           "output_padding": (0, 0)}
_SHAPES = {"batch": 1, "channels": 1, "input_size": 1, "input_shape": 1, "batch_shape": 1, "features": 1,
           "groups": 1}
_WIDENED_FAMILIES = ("conv", "convnd", "pooling", "pooling1d", "dense", "activation", "loss")


@dataclass(frozen=True)
class Drawn:
    """One drawn configuration: every parameter of the space, the base seed, and the case they build.

    ``refcheck run --layers <layer> --where "<format_where(params)>" --seed <base_seed>`` runs this case.
    """

    params: dict[str, Any]
    base_seed: int
    case: Case


def default_space(layer: str) -> Space:
    """The layer's space from the shipped case files."""
    if layer not in LAYERS:
        raise KeyError(f"unknown layer {layer!r}; allowed: {', '.join(LAYERS)}")
    spaces = load_spaces(layers=[layer])
    if not spaces:
        raise KeyError(f"{layer} has no case space in the shipped case files")
    return spaces[0]


def _ints(values: Iterable[Any]) -> list[int]:
    found = []
    for value in values:
        if isinstance(value, tuple):
            found += _ints(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            found.append(value)
    return found


def _simplest_first(values: Iterable[Any]) -> list[Any]:
    def key(value: Any) -> tuple:
        numbers = value if isinstance(value, tuple) else (value,)
        return (sum(numbers), max(numbers), numbers)
    return sorted(set(values), key=key)


def _window_domain(name: str, values: Sequence[Any], arity: int) -> list[Any]:
    """Every value (pairs: every tuple) from the smallest torch takes to one beyond the file's largest."""
    lowest, beyond = _WINDOW[name]
    words = [v for v in values if isinstance(v, str)]
    numbers = _ints(values)
    if not numbers:
        return list(values)
    span = range(lowest, max(numbers) + beyond + 1)
    drawn = list(span) if arity == 1 else list(itertools.product(span, repeat=arity))
    return _simplest_first(drawn) + words


def _shape_strategy(values: Sequence[Any], lowest: int) -> st.SearchStrategy[Any]:
    """Ints or tuples with the ranks of the file's values, each entry up to the file's largest."""
    words = [v for v in values if not isinstance(v, (int, tuple)) or isinstance(v, bool)]
    numbers = _ints(values)
    if not numbers:
        return st.sampled_from(list(values))
    top = max(numbers)
    ranks = sorted({len(v) if isinstance(v, tuple) else 0 for v in values if v not in words})
    entry = st.integers(lowest, max(top, lowest))
    options = [entry if rank == 0 else st.tuples(*[entry] * rank) for rank in ranks]
    if words:
        options.append(st.sampled_from(words))
    return st.one_of(options)


def parameter_domains(space: Space, capabilities: Capabilities = ALL_SUPPORTED,
                      dtypes: Sequence[str] | None = None) -> dict[str, st.SearchStrategy[Any]]:
    """One strategy per parameter of the space (plus ``dtype`` and ``values``), simplest value first.

    Hyperparameter values the implementation cannot take (``capabilities``) are left out, as in the
    sweep; a parameter left with no value raises ValueError.
    """
    spec = LAYERS[space.layer]
    widened = spec.family in _WIDENED_FAMILIES
    params = dict(space.params)
    params["dtype"] = [d for d in DTYPES if dtypes is None or d in dtypes]
    params["values"] = list(VALUE_KINDS[space.layer])
    check = capabilities.value_supported
    domains: dict[str, st.SearchStrategy[Any]] = {}
    for name, values in params.items():
        is_hyper = name in spec.hyper_names
        if widened and name in _WINDOW:
            arity = spec.hyper(name).arity if is_hyper and spec.hyper(name).pair else 1
            values = _window_domain(name, values, arity)
        elif widened and name in _SHAPES and not is_hyper:
            domains[name] = _shape_strategy(values, _SHAPES[name])
            continue
        elif widened and name == "groups":
            values = list(range(1, max(_ints(values) or [1]) + 1)) + [v for v in values if isinstance(v, str)]
        if is_hyper and check is not None:
            values = [v for v in values if v == "depthwise" or check(name, value_for_check(space.layer, name, v))]
        if not values:
            raise ValueError(f"{space.layer}: no value of {name} is supported")
        domains[name] = st.sampled_from(list(values))
    return domains


def _elements(case: Case) -> int:
    return sum(int(np.prod(shape)) for _, shape in case.shapes if shape is not None)


_ATTEMPTS = 8


def configurations(layer: str, *, space: Space | None = None, capabilities: Capabilities = ALL_SUPPORTED,
                   dtypes: Sequence[str] | None = None, max_elements: int = MAX_ELEMENTS,
                   base_seeds: st.SearchStrategy[int] | None = None) -> st.SearchStrategy[Drawn]:
    """Valid configurations of ``layer`` as :class:`Drawn` records (parameters, base seed, case).

    space: the parameter space (default: the shipped case file's); capabilities: what the
    implementation supports (default: everything); dtypes: only these; max_elements: cases with
    more tensor elements in all are rejected; base_seeds: strategy of the base seed of the inputs.
    """
    space = space or default_space(layer)
    domains = parameter_domains(space, capabilities, dtypes)
    seeds = base_seeds if base_seeds is not None else st.integers(0, MAX_BASE_SEED)

    @st.composite
    def draw_configuration(draw: st.DrawFn) -> Drawn:
        # Drawn again (a few times) rather than rejected at once: most of some spaces' combinations
        # are ones torch refuses (a pool's padding over half its kernel), and a strategy that
        # rejects most of what it draws fails hypothesis's health check in the user's own tests.
        for _ in range(_ATTEMPTS):
            params = {name: draw(domain) for name, domain in domains.items()}
            base_seed = draw(seeds)
            try:
                case = build_case(space, params, base_seed)
            except InvalidConfig:
                continue
            if _elements(case) > max_elements:
                continue
            if capabilities.case_reason is not None and capabilities.case_reason(case):
                continue
            return Drawn(params, base_seed, case)
        reject()

    return draw_configuration()


def cases(layer: str, **options: Any) -> st.SearchStrategy[Case]:
    """Valid :class:`Case` records of ``layer`` (options as :func:`configurations`)."""
    return configurations(layer, **options).map(lambda drawn: drawn.case)


def case_inputs(layer: str, **options: Any) -> st.SearchStrategy[tuple[Case, dict[str, np.ndarray | None]]]:
    """(case, its input tensors by name) of ``layer``: the tensors refcheck hands an implementation."""
    return cases(layer, **options).map(lambda case: (case, make_inputs(case)))


def special_floats(dtype: str = "float64", *, near_max: bool = True) -> st.SearchStrategy[float]:
    """Ordinary values mixed with the ones hand-written code gets wrong.

    Exact zeros, ties (a few values on a coarse grid), values below the usual sentinels (-1e5 to
    -1e12), magnitudes around 1e-30, and (``near_max``) between a quarter and a half of the
    dtype's largest finite value; never nan or inf.
    """
    width = 32 if dtype == "float32" else 64
    largest = float(np.finfo(dtype).max)

    def floats(low: float, high: float) -> st.SearchStrategy[float]:
        exact = np.dtype(dtype).type  # bounds the dtype holds exactly, as hypothesis requires
        return st.floats(float(exact(low)), float(exact(high)), width=width)

    def signed(low: float, high: float) -> st.SearchStrategy[float]:
        return st.tuples(st.sampled_from([1.0, -1.0]), floats(low, high)).map(lambda pair: pair[0] * pair[1])

    kinds = [floats(-10.0, 10.0), st.just(0.0), st.sampled_from([-1.0, -0.5, 0.5, 1.0]),
             floats(-1e12, -1e5), signed(1e-32, 1e-28)]
    if near_max:
        kinds.append(signed(largest / 4, largest / 2))
    return st.one_of(kinds)


def arrays(shape: int | tuple[int, ...] | st.SearchStrategy[tuple[int, ...]], dtype: str = "float64", *,
           elements: st.SearchStrategy[float] | None = None) -> st.SearchStrategy[np.ndarray]:
    """numpy arrays of ``dtype`` whose entries are :func:`special_floats` (or ``elements``)."""
    return hnp.arrays(np.dtype(dtype), shape, elements=elements if elements is not None else special_floats(dtype))


def probabilities(dtype: str = "float64") -> st.SearchStrategy[float]:
    """Probabilities in [0, 1], exactly 0 and 1 among them (binary cross-entropy's edges)."""
    width = 32 if dtype == "float32" else 64
    return st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0, width=width))
