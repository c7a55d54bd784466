"""Stage 1, cases: case files in, frozen :class:`Case` records and their tensors out.

- ``*.toml`` (beside this module): the shipped case spaces, one file per layer family;
- :mod:`.spaces`: loading and validating case files into :class:`Space` records;
- :mod:`.expand`: expansion into cases with value and pairwise coverage (:class:`Coverage`);
- :mod:`.case`: the :class:`Case` record, its stable id and seed;
- :mod:`.inputs`: the seeded input tensors and the random upstream gradient of a case.
"""
from __future__ import annotations

from .case import DTYPES, Case, case_id, case_seed
from .expand import ALL_SUPPORTED, Capabilities, Coverage, build_case, expand
from .inputs import VALUE_KINDS, make_inputs, make_upstream_gradient, make_upstream_gradients
from .spaces import Space, allowed_params, default_cases_dir, load_spaces

__all__ = ["ALL_SUPPORTED", "DTYPES", "VALUE_KINDS", "Capabilities", "Case", "Coverage", "Space", "allowed_params",
           "build_case", "case_id", "case_seed", "default_cases_dir", "expand", "load_spaces", "make_inputs",
           "make_upstream_gradient", "make_upstream_gradients"]
