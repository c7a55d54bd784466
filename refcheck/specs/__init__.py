"""Stage 0, specs: what each layer is, and the errors refcheck raises.

Takes nothing; gives :class:`LayerSpec` records (tensors, hyperparameters with torch's defaults,
torch's output-shape and validity rules) that every later stage reads, and the error types.
Imports nothing else of refcheck, and never torch.
"""
from __future__ import annotations

from .errors import CaseFileError, RefcheckError, Unsupported, UsageError
from .layer_specs import LAYERS, Hyper, InvalidConfig, LayerSpec, layer_spec, pool_output_size

__all__ = ["LAYERS", "CaseFileError", "Hyper", "InvalidConfig", "LayerSpec", "RefcheckError", "Unsupported",
           "UsageError", "layer_spec", "pool_output_size"]
