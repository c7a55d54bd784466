"""Assertions and a finite-difference oracle shared by the layer test modules."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["assert_matches", "numeric_gradient"]


def assert_matches(
    actual: np.ndarray,
    expected: np.ndarray,
    dtype: type,
    what: str,
    *,
    tolerances: Mapping[type, tuple[float, float]],
) -> None:
    """Type, shape, dtype and values of ``actual`` against the float64 reference ``expected``.

    ``tolerances[dtype]`` is the ``(rtol, atol)`` pair for results of that dtype.
    """
    assert isinstance(actual, np.ndarray), f"{what}: {type(actual).__name__}, expected ndarray"
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}"
    )
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    rtol, atol = tolerances[dtype]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def numeric_gradient(
    loss: Callable[[np.ndarray], float], point: np.ndarray, step: float = 1e-6
) -> np.ndarray:
    """Central-difference gradient of a scalar function of a float64 array, element by element."""
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        shifted = point.copy()
        shifted[index] += step
        upper = loss(shifted)
        shifted[index] -= 2 * step
        lower = loss(shifted)
        gradient[index] = (upper - lower) / (2 * step)
    return gradient


def adapter_skip_source(name: str = "skip") -> str:
    """Module source defining ``name(reason)``, which raises refcheck's Unsupported as one of its
    adapters does (from a file of refcheck's package): the runtime skip of a case an adapter cannot
    express. Raised by the user's code itself, Unsupported is an error row instead."""
    return (
        "import os as _os\n"
        "import refcheck as _refcheck\n"
        f"_adapter = {{'Unsupported': _refcheck.Unsupported}}\n"
        f"exec(compile('def {name}(reason):\\n    raise Unsupported(reason)\\n', "
        "_os.path.join(_os.path.dirname(_refcheck.__file__), 'adapters', 'contract.py'), 'exec'), _adapter)\n"
        f"{name} = _adapter[{name!r}]\n"
    )
