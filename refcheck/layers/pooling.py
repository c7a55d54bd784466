"""Vectorised numpy 2-D pooling layers that reproduce ``torch.nn.functional`` on CPU.

Layers: ``max_pool2d`` and ``avg_pool2d`` (``lp_pool2d`` in :mod:`.lp_pooling`, built on them), each as a ``*_forward(x, *, ...)``
returning ``(out, cache)`` and a ``*_backward(dout, cache)`` returning ``dx``.  Inputs are
``(N, C, H, W)`` arrays (any number of leading axes works); outputs and gradients keep the
input's dtype and are computed at that precision.

Output size (per spatial axis, torch's ``pooling_output_shape``), with input size ``L``,
kernel ``k``, stride ``s``, padding ``p``, dilation ``d`` and effective kernel
``e = d * (k - 1) + 1``::

    ceil_mode=False:  out = floor((L + 2p - e) / s) + 1
    ceil_mode=True:   out = ceil((L + 2p - e) / s) + 1, minus one if the last window would
                      start at or beyond L + p in padded coordinates, i.e. inside the right
                      padding; every window therefore starts inside the input or the left
                      padding.

With ``ceil_mode`` the last window may hang past the padded input (it may even be larger than
the whole input when ``L + 2p < e < L + 2p + s``); the overhanging part is ignored.

Implementation. max_pool2d copies every window once, kernel offset next to the batch-channel
axis, and takes the maximum and the FIRST offset reaching it with reductions over that axis
(:func:`first_max`); the backward routes ``dout`` to those elements (plain assignment when windows
cannot overlap, an unbuffered add where they may). Inputs holding NaN take torch's scan instead
(:func:`update_first_max` over the kernel offsets), as there the LAST NaN wins. avg_pool2d sums
windows separably, rows then columns (``kh + kw`` strided passes instead of ``kh * kw``), over
the real input only, and spreads the gradient back per stride phase.

Modules: the shared geometry (:func:`pool_output_size`, the per-axis window sweep) is in
:mod:`._pool_geometry`, max pooling in :mod:`._max_pool` and average pooling in :mod:`._avg_pool`;
every name is importable from here.
"""
from __future__ import annotations

from ._avg_pool import avg_pool2d_backward, avg_pool2d_forward
from ._max_pool import (
    _max_pool_scan,  # noqa: F401  (private, used by the tests)
    first_max,
    max_pool2d_backward,
    max_pool2d_forward,
    update_first_max,
)
from ._pool_geometry import (
    _axes,  # noqa: F401  (private, used by the tests)
    pool_output_size,
    pooling_input,
)

__all__ = [
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "first_max",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "pool_output_size",
    "pooling_input",
    "update_first_max",
]
