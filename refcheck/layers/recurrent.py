"""Recurrent layers in numpy: tanh RNN, LSTM and GRU cells, and whole RNN / LSTM sequences.

Each layer is a pair of pure functions following the implementation contract:
``<layer>_forward(...) -> (out, cache)`` and ``<layer>_backward(dout, cache) -> gradients``.
Layouts and gate orders are torch's:

- weights are ``(G * hidden_size, input_size)`` and ``(G * hidden_size, hidden_size)`` with the
  gate blocks stacked along the first axis: LSTM ``i, f, g, o`` (G = 4), GRU ``r, z, n`` (G = 3),
  tanh RNN a single block (G = 1);
- cells take a batch ``x (N, input_size)``; sequences are sequence-first ``x (T, N, input_size)``
  (torch.nn.RNN / LSTM with ``batch_first=False``), one layer, one direction.

The cells and the sequences share the same step functions: a sequence is the cell applied T times,
and its backward walks the steps in reverse, carrying the hidden (and cell) state gradient from one
step to the previous one. The input-side products (``x @ weight_ih.T`` and its gradients) have no
recurrence, so they are done for all steps in one matrix product.
"""
from __future__ import annotations

from .recurrent_cells import *  # noqa: F401,F403
from .recurrent_cells import __all__ as _cells
from .recurrent_sequences import *  # noqa: F401,F403
from .recurrent_sequences import __all__ as _sequences

__all__ = sorted(_cells + _sequences)
