"""Loading an implementation: a module (importable name or .py path) mapped to per-layer functions."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..adapters import LayerFunctions, adapt, contract_layers
from ..adapters.optional_tensors import fit_optional_tensors
from ..specs import UsageError

__all__ = ["BUILTIN", "Implementation", "load_implementation"]


BUILTIN = "refcheck.layers"


@dataclass(frozen=True)
class Implementation:
    """A loaded implementation: its name and the layers it provides."""

    name: str
    layers: dict[str, LayerFunctions]
    module: ModuleType | None = None


def _import(reference: str) -> ModuleType:
    """Import a module by dotted name or from a path to a .py file (or a package folder)."""
    path = Path(reference)
    if reference.endswith(".py") or path.is_dir() or os.sep in reference:
        if path.is_dir():
            path = path / "__init__.py"
        if not path.is_file():
            raise UsageError(f"--impl {reference!r}: no such file; give a path to a .py file or an importable module name")
        module_name = f"refcheck_impl_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"--impl {reference!r}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        # The user's folder goes on the path so the module can import its neighbours.
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise UsageError(f"--impl {reference!r}: importing it raised {type(error).__name__}: {error}") from error
        return module
    try:
        return importlib.import_module(reference)
    except ModuleNotFoundError as error:
        if error.name and reference.startswith(error.name):
            raise UsageError(f"--impl {reference!r}: no module named {error.name!r}; give an importable "
                             "module name or a path to a .py file") from None
        raise UsageError(f"--impl {reference!r}: importing it raised ModuleNotFoundError: {error}") from error
    except Exception as error:
        raise UsageError(f"--impl {reference!r}: importing it raised {type(error).__name__}: {error}") from error


def load_implementation(reference: str | None = None) -> Implementation:
    """Load an implementation by module name or .py path (default: the built-in layers).

    Contract-style functions win; adapters (CS231n style, object style) fill in other layers.
    """
    reference = reference or BUILTIN
    if reference.endswith(".py") or os.sep in reference:
        # Absolute, so worker processes load the same file whatever their directory.
        reference = str(Path(reference).resolve())
    module = _import(reference)
    layers = {}
    if reference != BUILTIN:
        layers.update(adapt(module))
    layers.update(contract_layers(module))
    return Implementation(reference, {name: fit_optional_tensors(f) for name, f in layers.items()}, module)

