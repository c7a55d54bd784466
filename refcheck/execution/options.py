"""The checking options shared by ``refcheck run`` and the pytest plugin, defined once.

Each :class:`Option` knows its command-line name (``--timeout``; the plugin prefixes
``--refcheck-``), how to read a value (with a message in the user's terms on bad input), its
default and its help. :func:`check_options` turns the parsed values into :class:`CheckOptions`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .limits import parse_size

__all__ = ["MAP_HELP", "OPTIONS", "CheckOptions", "Option", "check_options", "parse_value"]


def _default_cache() -> str:
    from ..oracle.cache import default_cache_dir

    return str(default_cache_dir())


@dataclass
class CheckOptions:
    """How cases are checked (what `refcheck run`, the plugin and ``refcheck.check`` share).

    oracle_cache: folder of torch's cached results (None: memory only).
    map_path: the user's mapping file (``--map``), read where the implementation is loaded.
    """

    workers: int = 2
    timeout: float | None = 60.0
    selfcheck: bool = True
    diagnose: bool = True
    forward_only: bool = False
    allow_frameworks: bool = False
    memory_limit: int | None = None
    oracle_cache: str | None = field(default_factory=_default_cache)
    map_path: str | None = None
    dask: str | None = None


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        raise ValueError(f"expected a whole number of 0 or more, got {text!r}")
    return value


@dataclass(frozen=True)
class Option:
    """One shared option: ``name`` as on the command line without dashes (dest: underscores)."""

    name: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] | None = None  # None: a flag
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


OPTIONS = (
    Option("timeout", "seconds allowed per case before it is stopped as an error; a layer whose cases keep "
           "timing out gets a shorter budget for the rest (default: 60)", 60.0, _positive_number, "S"),
    Option("workers", "implementation worker processes (default: 2; 0 runs everything in this process, "
           "without isolation or timeouts)", 2, _count, "N"),
    Option("dask", "run the implementation's tasks on a Dask cluster: a scheduler address such as "
           "tcp://host:8786, or 'local' to start one on this machine (needs refcheck[dask]); torch's side "
           "stays in this machine's oracle processes", None, str, "ADDRESS"),
    Option("memory-limit", "memory each implementation worker may allocate, such as 512MB or 2GB; more is an "
           "error row naming the limit (default: half the machine's memory shared among the workers)",
           None, parse_size, "SIZE"),
    Option("allow-frameworks", "check an implementation that imports torch, jax, tensorflow, autograd, mxnet "
           "or cupy anyway (its rows still say so); by default its cases fail"),
    Option("forward-only", "check outputs only, for code that has no backward by design (gradients are not "
           "compared)"),
    Option("map", "a TOML mapping of your classes or functions to layers (default: refcheck.toml beside the code, "
           "or [tool.refcheck] in its pyproject.toml)", None, str, "FILE"),
    Option("no-oracle-cache", "recompute torch's results instead of reading them from the cache folder "
           "(graders: the cache is writable by code running as you)"),
    Option("no-selfcheck", "skip the finite-difference check of the backward against its own forward"),
)


MAP_HELP = next(option.help for option in OPTIONS if option.name == "map")


def parse_value(option: Option, text: Any) -> Any:
    """A value from the command line or a config, converted; ValueError names the option."""
    if option.parse is None or text is None or not isinstance(text, str):
        return text
    try:
        return option.parse(text)
    except ValueError as error:
        raise ValueError(f"--{option.name}: {error}") from None


def check_options(values: Mapping[str, Any], oracle_cache: str | None) -> CheckOptions:
    """CheckOptions from parsed values keyed by dest (``timeout``, ``memory_limit``, ...)."""
    return CheckOptions(workers=values["workers"], timeout=values["timeout"], selfcheck=not values["no_selfcheck"],
                        forward_only=values["forward_only"], allow_frameworks=values["allow_frameworks"],
                        memory_limit=values["memory_limit"],
                        oracle_cache=None if values["no_oracle_cache"] else oracle_cache,
                        map_path=values.get("map"), dask=values.get("dask"))
