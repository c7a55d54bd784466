"""Specs of conv1d, conv3d and conv_transpose2d, and of max_pool1d and avg_pool1d, with torch's
output-shape and validity rules (checked against torch in tests/test_specs_convnorm.py)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .layer_specs import Hyper, InvalidConfig, LayerSpec, pool_output_size

__all__ = ["CONV_ND_SPECS"]

Shape = tuple[int, ...]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfig(message)


def _sizes(value: Any, ndim: int) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


def _conv_nd_shape(ndim: int):
    def shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
        n, c, *spatial = shapes["input"]
        f, c_per_group, *kernel = shapes["weight"]
        _check(len(spatial) == ndim and len(kernel) == ndim, f"input and weight must be {ndim + 2}-d")
        groups = hp["groups"]
        _check(groups >= 1 and c % groups == 0 and f % groups == 0,
               f"groups={groups} must divide in_channels={c} and out_channels={f}")
        _check(c_per_group == c // groups, f"weight has {c_per_group} input channels, expected {c // groups}")
        if shapes.get("bias") is not None:
            _check(tuple(shapes["bias"]) == (f,), f"bias shape {shapes['bias']} != ({f},)")
        stride, dilation, padding = _sizes(hp["stride"], ndim), _sizes(hp["dilation"], ndim), hp["padding"]
        _check(min(stride) >= 1 and min(dilation) >= 1, "stride and dilation must be positive")
        if padding == "same":
            _check(all(s == 1 for s in stride), "padding='same' is not supported for strided convolutions")
            return (n, f, *spatial)
        pad = (0,) * ndim if padding == "valid" else _sizes(padding, ndim)
        _check(min(pad) >= 0, "negative padding is not supported")
        out = []
        for size, k, s, p, d in zip(spatial, kernel, stride, pad, dilation):
            _check(d * (k - 1) + 1 <= size + 2 * p,
                   f"dilated kernel {d * (k - 1) + 1} is larger than the padded input {size + 2 * p}")
            out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
        return (n, f, *out)
    return shape


def _conv_transpose2d_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    n, c_in, h, w = shapes["input"]
    w_in, c_out_per_group, kh, kw = shapes["weight"]
    groups = hp["groups"]
    _check(groups >= 1 and c_in % groups == 0, f"groups={groups} must divide in_channels={c_in}")
    _check(w_in == c_in, f"weight is (C_in, C_out/groups, kh, kw); its first size {w_in} != {c_in}")
    c_out = c_out_per_group * groups
    if shapes.get("bias") is not None:
        _check(tuple(shapes["bias"]) == (c_out,), f"bias shape {shapes['bias']} != ({c_out},)")
    stride, padding = hp["stride"], hp["padding"]
    dilation, output_padding = hp["dilation"], hp["output_padding"]
    _check(min(stride) >= 1 and min(dilation) >= 1 and min(padding) >= 0 and min(output_padding) >= 0,
           "stride and dilation must be positive, padding and output_padding non-negative")
    out = []
    for size, k, s, p, d, op in zip((h, w), (kh, kw), stride, padding, dilation, output_padding):
        _check(op < s or op < d, f"output padding {op} must be smaller than either stride {s} or dilation {d}")
        o = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        _check(o >= 1, f"output size {o} is too small")
        out.append(o)
    return (n, c_out, out[0], out[1])


def _pool1d_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    n, c, length = shapes["input"]
    kernel, stride, pad = hp["kernel_size"], hp["stride"], hp["padding"]
    dilation = hp.get("dilation", 1)
    _check(kernel >= 1 and stride >= 1 and dilation >= 1, "kernel_size, stride and dilation must be positive")
    _check(0 <= pad <= kernel // 2, f"padding {pad} should be at most half of kernel_size {kernel}")
    out = pool_output_size(length, kernel, stride, pad, dilation, hp["ceil_mode"])
    _check(out >= 1, f"output size {out} is too small (input {length}, kernel {kernel}, dilation {dilation})")
    # As for max_pool2d: a first window made only of padding makes torch read out of bounds.
    _check(any(0 <= j * dilation - pad < length for j in range(kernel)), "the first window lies entirely in the padding")
    return (n, c, out)


def _kernel_default(hp: Mapping[str, Any]) -> Any:
    return hp.get("kernel_size")


_CONV_TENSORS = (("input", "weight", "bias"), ("input", "weight", "bias"))
_BIAS = frozenset({"bias"})

CONV_ND_SPECS = (
    LayerSpec("conv1d", "convnd", *_CONV_TENSORS,
              (Hyper("stride", 1), Hyper("padding", 0), Hyper("dilation", 1), Hyper("groups", 1)),
              _conv_nd_shape(1), optional=_BIAS),
    LayerSpec("conv3d", "convnd", *_CONV_TENSORS,
              (Hyper("stride", (1, 1, 1), pair=True, arity=3), Hyper("padding", (0, 0, 0), pair=True, arity=3),
               Hyper("dilation", (1, 1, 1), pair=True, arity=3), Hyper("groups", 1)),
              _conv_nd_shape(3), optional=_BIAS),
    LayerSpec("conv_transpose2d", "convnd", *_CONV_TENSORS,
              (Hyper("stride", (1, 1), pair=True), Hyper("padding", (0, 0), pair=True),
               Hyper("output_padding", (0, 0), pair=True), Hyper("groups", 1), Hyper("dilation", (1, 1), pair=True)),
              _conv_transpose2d_shape, optional=_BIAS),
    LayerSpec("max_pool1d", "pooling1d", ("input",), ("input",),
              (Hyper("kernel_size", None), Hyper("stride", _kernel_default), Hyper("padding", 0),
               Hyper("dilation", 1), Hyper("ceil_mode", False)),
              _pool1d_shape),
    LayerSpec("avg_pool1d", "pooling1d", ("input",), ("input",),
              (Hyper("kernel_size", None), Hyper("stride", _kernel_default), Hyper("padding", 0),
               Hyper("ceil_mode", False), Hyper("count_include_pad", True)),
              _pool1d_shape),
)
