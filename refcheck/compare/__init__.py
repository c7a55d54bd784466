"""Stage 3, compare (trusted side): an implementation's results and torch's references in,
result records out.

- :mod:`.tolerance`: the tolerance rule and the per-tensor comparison;
- :mod:`.batch`: the tensors of many cases that plainly pass, compared together (the same figures);
- :mod:`.records`: the result records (one per case and compared tensor) and :class:`CaseRun`,
  everything known about one executed case, which diagnosis reads.
"""
from __future__ import annotations

from .records import CaseRun, base_record, compared_tensors, status_records
from .tolerance import DEFAULT_TOLERANCE, TensorComparison, compare_tensor, relative_error_eps, tolerance_eps

__all__ = ["DEFAULT_TOLERANCE", "CaseRun", "TensorComparison", "base_record", "compare_tensor", "compared_tensors",
           "relative_error_eps", "status_records", "tolerance_eps"]
