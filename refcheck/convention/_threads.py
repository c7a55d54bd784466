"""Run torch single-threaded around the explorer's tiny float64 computations."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["single_threaded"]


@contextmanager
def single_threaded() -> Iterator[None]:
    """Use one intra-op thread inside the block, then restore the previous count.

    The tensors here have a few hundred elements: extra threads only add synchronisation, and on
    a busy machine OpenMP workers waiting for a core made a single small conv2d take ~0.1 s
    instead of ~20 µs.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
