"""Loading an implementation: a module (importable name, .py path, or package folder) mapped to
per-layer functions.

A file that lives inside a package (a folder with ``__init__.py``) is imported as the user would run
it: the package root's parent goes on ``sys.path`` and the file is imported under its dotted name,
so relative imports and ``from common.util import ...`` resolve. A package folder brings its
modules with it. The layers are found by :func:`refcheck.adapters.discover.discover`.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from ..adapters import LayerFunctions, contract_layers
from ..adapters.discover import Discovery, discover
from ..adapters.mapping import LayerMapping, find_mapping, load_mapping
from ..adapters.optional_tensors import fit_optional_tensors
from ..specs import UsageError

__all__ = ["BUILTIN", "Implementation", "ImportedCode", "implementation_of", "import_implementation",
           "load_implementation"]


BUILTIN = "refcheck.layers"


@dataclass(frozen=True)
class Implementation:
    """A loaded implementation: its name, the layers it provides, and what discovery saw."""

    name: str
    layers: dict[str, LayerFunctions]
    module: ModuleType | None = None
    discovery: Discovery = field(default_factory=Discovery)
    mapping_source: str = ""
    map_path: str | None = None


def _package_root(path: Path) -> Path | None:
    """The outermost folder above ``path`` that is a package (has ``__init__.py``), or None."""
    root = None
    folder = path.parent
    while (folder / "__init__.py").is_file():
        root = folder
        folder = folder.parent
    return root


def _dotted(path: Path, root: Path) -> str:
    relative = path.relative_to(root.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _forget_other_package(root: Path) -> None:
    """Drop an already-imported package of the same name that lives elsewhere (another project)."""
    loaded = sys.modules.get(root.name)
    where = getattr(loaded, "__file__", None) if loaded is not None else None
    if loaded is not None and (where is None or Path(where).resolve().parent != root):
        for name in [n for n in sys.modules if n == root.name or n.startswith(root.name + ".")]:
            del sys.modules[name]
    importlib.invalidate_caches()


def _import_path(reference: str, path: Path) -> ModuleType:
    """Import a .py file (or a package folder) as the user would: inside its package if it has one."""
    if path.is_dir():
        if not (path / "__init__.py").is_file():
            raise UsageError(f"--impl {reference!r}: the folder has no __init__.py; give a .py file or a package")
        path = path / "__init__.py"
    root = _package_root(path)
    try:
        if root is not None:
            # The project root (the package's parent) goes on the path, as `python -m` from there would.
            sys.path.insert(0, str(root.parent))
            _forget_other_package(root)
            return importlib.import_module(_dotted(path, root))
        # A lone file: its folder goes on the path so it can import its neighbours.
        sys.path.insert(0, str(path.parent))
        module_name = f"refcheck_impl_{path.stem}_{abs(hash(str(path))) % 10**8}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"--impl {reference!r}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module
    except UsageError:
        raise
    except Exception as error:
        raise UsageError(f"--impl {reference!r}: importing it raised {type(error).__name__}: {error}") from error


def _import(reference: str) -> ModuleType:
    """Import a module by dotted name or from a path to a .py file (or a package folder)."""
    path = Path(reference)
    if reference.endswith(".py") or path.is_dir() or os.sep in reference:
        if not path.exists():
            raise UsageError(f"--impl {reference!r}: no such file; give a path to a .py file or an importable module name")
        return _import_path(reference, path.resolve())
    try:
        return importlib.import_module(reference)
    except ModuleNotFoundError as error:
        if error.name and reference.startswith(error.name):
            raise UsageError(f"--impl {reference!r}: no module named {error.name!r}; give an importable "
                             "module name or a path to a .py file") from None
        raise UsageError(f"--impl {reference!r}: importing it raised ModuleNotFoundError: {error}") from error
    except Exception as error:
        raise UsageError(f"--impl {reference!r}: importing it raised {type(error).__name__}: {error}") from error


def _with_submodules(module: ModuleType) -> list[ModuleType]:
    """A module, and if it is a package, every module inside it (imported)."""
    modules = [module]
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, prefix=module.__name__ + "."):
            try:
                modules.append(importlib.import_module(info.name))
            except Exception:  # noqa: BLE001 - a broken helper module must not hide the others
                continue
    return modules


def _mapping(reference: str, map_path: str | None) -> tuple[dict[str, LayerMapping], str]:
    if map_path:
        return load_mapping(map_path), str(map_path)
    if reference.endswith(".py") or os.sep in reference:
        found = find_mapping(reference)
        if found is not None:
            return load_mapping(found), str(found)
    return {}, ""


def implementation_reference(reference: str | None) -> str:
    """How the implementation is named to the workers: a module name, or an absolute path (so that
    worker processes load the same file whatever their directory); refcheck's layers by default."""
    reference = reference or BUILTIN
    if reference.endswith(".py") or os.sep in reference or Path(reference).is_dir():
        return str(Path(reference).resolve())
    return reference


@dataclass(frozen=True)
class ImportedCode:
    """The user's code imported, before discovery: the module (with a package's submodules) and the
    mapping that goes with it."""

    reference: str
    module: ModuleType
    modules: tuple[ModuleType, ...]
    mapping: dict[str, LayerMapping] = field(default_factory=dict)
    mapping_source: str = ""
    map_path: str | None = None


def import_implementation(reference: str | None = None, map_path: str | None = None) -> ImportedCode:
    """Import an implementation (module name, .py path or package folder; default: the built-in
    layers) and read its mapping: ``map_path`` (``--map``), else a refcheck.toml beside the code or
    a ``[tool.refcheck]`` table in its project's pyproject.toml when there is one."""
    reference = implementation_reference(reference)
    if map_path:
        map_path = str(Path(map_path).resolve())
    module = _import(reference)
    if reference == BUILTIN:
        return ImportedCode(reference, module, (module,))
    mapping, source = _mapping(reference, map_path)
    return ImportedCode(reference, module, tuple(_with_submodules(module)), mapping, source, map_path)


def implementation_of(code: ImportedCode, layers: list[str] | None = None) -> Implementation:
    """The layers found in imported code (only ``layers`` when given: discovery calls the user's
    code on each layer's probe case, and a worker needs only the layer of its cases)."""
    if code.reference == BUILTIN:
        return Implementation(code.reference, contract_layers(code.module), module=code.module)
    found = discover(list(code.modules), code.mapping, layers)
    functions = {name: fit_optional_tensors(functions) for name, functions in found.layers.items()}
    return Implementation(code.reference, functions, module=code.module, discovery=found,
                          mapping_source=code.mapping_source, map_path=code.map_path)


def load_implementation(reference: str | None = None, map_path: str | None = None) -> Implementation:
    """Load an implementation by module name, .py path or package folder (default: the built-in layers).

    ``map_path``: a mapping file (``--map``); otherwise a refcheck.toml beside the code or a
    ``[tool.refcheck]`` table in its project's pyproject.toml is used when there is one.
    """
    return implementation_of(import_implementation(reference, map_path))
