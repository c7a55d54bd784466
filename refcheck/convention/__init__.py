"""Convolution vs cross-correlation explorer: settles, with numbers computed at run time, which
operation torch's conv2d is and which formulas give its gradients.

- ``build_convention()``: the worked 3x3/2x2 example, the identity table (with wrong variants)
  and the pooling gradient rules, in one dataclass;
- ``key_table()``: the identity table as a pandas DataFrame (identity, formula, max_abs_error, holds);
- ``write_convention_report(out_dir, impl_report=None)``: convention.md, convention.html and PNGs;
- ``classify_conv2d(forward, backward)``: which convention a user's conv2d follows.

torch, pandas and matplotlib are imported on first use of a name, not on ``import refcheck.convention``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .classify import ConventionReport, classify_conv2d
    from .explorer import Convention, build_convention, key_table
    from .render import write_convention_report

__all__ = [
    "Convention",
    "ConventionReport",
    "build_convention",
    "classify_conv2d",
    "key_table",
    "write_convention_report",
]

_HOME = {
    "Convention": "explorer",
    "ConventionReport": "classify",
    "build_convention": "explorer",
    "classify_conv2d": "classify",
    "key_table": "explorer",
    "write_convention_report": "render",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
