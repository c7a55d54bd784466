"""Stage 6, network: a model file and an implementation in, the whole network checked against its
torch twin out.

- :mod:`.model_file`: model files (the network's torch layers in order, parameter names and
  layouts, the training run), the shipped ones in ``refcheck/cases/networks``;
- :mod:`.data`: the seeded starting parameters and the tiny synthetic data set;
- :mod:`.compose`, :mod:`.class_model`, :mod:`.user_side`: the untrusted side, in an
  implementation worker: the user's layers chained by refcheck, or a CS231n-style model class,
  trained for a few steps;
- the torch twin lives in :mod:`refcheck.oracle.network_twin` (torch stays in the oracle);
- :mod:`.compare`: rows per step and tensor, and the layer or update rule where a run first goes
  wrong; :mod:`.check`: the two sides in their workers; :mod:`.report`: network.csv, network.md,
  network.json and the loss-curve figures.
"""
from __future__ import annotations

__all__: list[str] = []
