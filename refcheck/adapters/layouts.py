"""Layouts other than torch's, converted at the boundary: NHWC activations, (kh, kw, C, F) and
(F, kh, kw, C) kernels, (in, out) dense weights, and layers that take one sample (C, H, W).

A :class:`Layout` says how each tensor is laid out for the user's code. ``with_layout`` wraps
LayerFunctions written in that layout so that they follow the contract (torch layouts): inputs are
transposed views on the way in, results are transposed back on the way out, and nothing else is
touched: a result of the wrong rank passes through unchanged, so every mistake still shows.
Which layout a piece of code uses is decided from shapes on a probe case (never from values), see
:mod:`refcheck.adapters.probe`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..specs import layer_spec
from .contract import LayerFunctions, gradient_tuple

__all__ = ["ACTIVATION_AXES", "Layout", "TORCH_LAYOUT", "WEIGHT_AXES", "candidate_layouts", "with_layout"]

# layout name -> axes that turn the torch layout into it (np.transpose order).
ACTIVATION_AXES = {"NCHW": (0, 1, 2, 3), "NHWC": (0, 2, 3, 1)}
WEIGHT_AXES = {
    "(F, C, kh, kw)": (0, 1, 2, 3), "(kh, kw, C, F)": (2, 3, 1, 0), "(F, kh, kw, C)": (0, 2, 3, 1),
    "(out, in)": (0, 1), "(in, out)": (1, 0),
}


@dataclass(frozen=True)
class Layout:
    """How the user's code lays out its tensors.

    activations: "NCHW" or "NHWC" (4-d inputs and outputs of conv and pooling layers).
    weight: one of WEIGHT_AXES's names; "(in, out)" for dense weights stored transposed.
    single_sample: forward takes one sample (C, H, W) and is called once per sample.
    """

    activations: str = "NCHW"
    weight: str = ""
    single_sample: bool = False

    @property
    def is_torch(self) -> bool:
        return self.activations == "NCHW" and self.weight in ("", "(F, C, kh, kw)", "(out, in)") \
            and not self.single_sample

    def describe(self, spatial: bool = True) -> str:
        parts = [] if not spatial else [self.activations if not self.single_sample else "one sample (C, H, W)"]
        if self.weight:
            parts.append(f"weight {self.weight}")
        return ", ".join(parts)


TORCH_LAYOUT = Layout()


def _to_user(array: Any, axes: tuple[int, ...]) -> Any:
    if array is None or axes == tuple(range(len(axes))):
        return array
    return np.transpose(array, axes) if np.ndim(array) == len(axes) else array


def _from_user(array: Any, axes: tuple[int, ...]) -> Any:
    if array is None or axes == tuple(range(len(axes))):
        return array
    if isinstance(array, np.ndarray) and array.ndim == len(axes):
        return np.transpose(array, np.argsort(axes))
    return array


def _axes(layout: Layout, tensor: str, spatial: bool) -> tuple[int, ...]:
    if tensor in ("input", "output"):
        return ACTIVATION_AXES[layout.activations] if spatial else ()
    if tensor == "weight" and layout.weight:
        return WEIGHT_AXES[layout.weight]
    return ()


def candidate_layouts(layer: str) -> list[Layout]:
    """The layouts worth trying for a layer, torch's first."""
    family = layer_spec(layer).family
    if family == "conv":
        return [Layout("NCHW", "(F, C, kh, kw)"), Layout("NHWC", "(kh, kw, C, F)"), Layout("NHWC", "(F, kh, kw, C)"),
                Layout("NCHW", "(kh, kw, C, F)"), Layout("NHWC", "(F, C, kh, kw)"),
                Layout("NCHW", "(F, C, kh, kw)", single_sample=True)]
    if family == "pooling":
        return [Layout("NCHW"), Layout("NHWC"), Layout("NCHW", single_sample=True)]
    if layer == "linear":
        return [Layout("NCHW", "(out, in)"), Layout("NCHW", "(in, out)")]
    return [TORCH_LAYOUT]


def _per_sample(functions: LayerFunctions) -> tuple[Any, Any]:
    """forward/backward that call one-sample code once per sample; parameter gradients are summed."""

    def forward(x, *rest, **hparams):
        pairs = [functions.forward(sample, *rest, **hparams) for sample in x]
        if any(not isinstance(p, tuple) or len(p) != 2 for p in pairs):
            return pairs[0], None
        outputs, caches = zip(*pairs)
        return np.stack(outputs), caches

    def backward(dout, caches):
        grads = [gradient_tuple(functions.backward(dout[i], cache)) for i, cache in enumerate(caches)]
        combined = [np.stack([g[0] for g in grads])]
        for position in range(1, len(grads[0])):
            parts = [g[position] for g in grads]
            combined.append(None if any(p is None for p in parts) else sum(np.asarray(p) for p in parts))
        return tuple(combined)

    return forward, backward


def with_layout(functions: LayerFunctions, layout: Layout) -> LayerFunctions:
    """``functions`` (written in ``layout``) as contract-style functions in torch layouts."""
    spec = layer_spec(functions.layer)
    spatial = spec.family in ("conv", "pooling")
    label = layout.describe(spatial)
    if functions.adapter == "cs231n" and functions.layer == "linear":
        # The CS231n adapter hands affine_forward the weight transposed itself: the user's code
        # keeps the other layout than the one found at the adapter's boundary.
        label = {"weight (out, in)": "weight (in, out)", "weight (in, out)": "weight (out, in)"}.get(label, label)
    if layout.is_torch:
        return replace(functions, layout=label)
    inner_forward, inner_backward = functions.forward, functions.backward
    if layout.single_sample:
        inner_forward, inner_backward = _per_sample(functions)

    def forward(*tensors, **hparams):
        handed = [_to_user(t, _axes(layout, name, spatial)) for name, t in zip(spec.tensors, tensors)]
        returned = inner_forward(*handed, **hparams)
        if not isinstance(returned, tuple) or len(returned) != 2:
            return returned
        output, cache = returned
        return _from_user(output, _axes(layout, "output", spatial)), cache

    def backward(dout, cache):
        grads = gradient_tuple(inner_backward(_to_user(dout, _axes(layout, "output", spatial)), cache))
        return tuple(_from_user(g, _axes(layout, name, spatial)) for name, g in zip(spec.differentiable, grads))

    return replace(functions, forward=forward, backward=backward if functions.backward is not None else None,
                   layout=label)
