"""Everything the convention explorer shows, computed in one call."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .identities import IdentityCase, IdentityRow, identity_rows
from .pooling_rules import PoolingDemo, pooling_demos
from .worked_example import WorkedExample, worked_example

__all__ = ["Convention", "KEY_TABLE_COLUMNS", "build_convention", "key_table"]

KEY_TABLE_COLUMNS = ["identity", "formula", "max_abs_error", "holds"]


@dataclass(frozen=True)
class Convention:
    """The worked example, the identity table (with its case), the pooling demonstrations and the
    versions they were computed with."""

    worked_example: WorkedExample
    identity_case: IdentityCase
    identities: tuple[IdentityRow, ...]
    pooling: tuple[PoolingDemo, ...]
    torch_version: str
    numpy_version: str

    def key_table(self) -> pd.DataFrame:
        """The identity table: columns identity, formula, max_abs_error (float), holds (bool)."""
        return _frame(self.identities)

    @property
    def all_as_expected(self) -> bool:
        """Every identity holds, every wrong variant fails, every worked entry and pooling rule agrees."""
        entries = self.worked_example.grad_input_entries + self.worked_example.grad_kernel_entries
        return (all(row.as_expected for row in self.identities)
                and all(entry.matches_autograd for entry in entries)
                and self.worked_example.torch_is_correlation
                and all(demo.holds for demo in self.pooling))


def _frame(rows: tuple[IdentityRow, ...] | list[IdentityRow]) -> pd.DataFrame:
    frame = pd.DataFrame([[row.identity, row.formula, row.max_abs_error, row.holds] for row in rows],
                         columns=KEY_TABLE_COLUMNS)
    return frame.astype({"max_abs_error": "float64", "holds": "bool"})


def build_convention(seed: int = 0, case: IdentityCase | None = None) -> Convention:
    """Compute the worked example, the identity table and the pooling rules (float64, seeded).

    Parameters
    ----------
    seed : seed of the identity case's random tensors and of the pooling demonstrations.
    case : the identity table's conv2d setting (default ``IdentityCase(seed=seed)``).
    """
    case = case or IdentityCase(seed=seed)
    return Convention(
        worked_example=worked_example(),
        identity_case=case,
        identities=tuple(identity_rows(case)),
        pooling=tuple(pooling_demos(seed)),
        torch_version=torch.__version__,
        numpy_version=np.__version__,
    )


def key_table(convention: Convention | None = None) -> pd.DataFrame:
    """The identity table as a DataFrame (columns identity, formula, max_abs_error, holds).

    Computes only the identity rows when no ``convention`` is given.
    """
    if convention is not None:
        return convention.key_table()
    return _frame(identity_rows())
