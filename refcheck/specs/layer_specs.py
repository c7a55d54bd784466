"""What each layer is: its tensors, hyperparameters (with torch's defaults) and output-shape rule.

A :class:`LayerSpec` is the single description of a layer that the case expansion, the input
generator, the oracle, the capability check and the reports all read. Shapes and validity follow
torch's own rules (checked against torch in the tests), so expansion keeps only the
configurations torch accepts without importing torch.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LAYERS",
    "Hyper",
    "InvalidConfig",
    "LayerSpec",
    "layer_spec",
    "pool_output_size",
]

Shape = tuple[int, ...]
Pair = tuple[int, int]


class InvalidConfig(ValueError):
    """A configuration torch rejects; the message says why."""


@dataclass(frozen=True)
class Hyper:
    """A hyperparameter: keyword name as in torch, and its default.

    default: a value, or a callable of the case's hyperparameters (max_pool2d's stride defaults
        to its kernel_size).
    pair: passed to implementations as an (h, w) tuple of ints ((d, h, w) with ``arity=3``).
    in_id_at_default: False leaves the hyperparameter out of case ids while it is at its default
        (a hyperparameter added to an existing layer, so that the older cases keep their ids).
    """

    name: str
    default: Any
    pair: bool = False
    arity: int = 2
    in_id_at_default: bool = True

    def default_for(self, hparams: Mapping[str, Any]) -> Any:
        return self.default(hparams) if callable(self.default) else self.default


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the contract.

    tensors: forward's positional tensor arguments, in torch.nn.functional's order.
    differentiable: the tensors that get a gradient, in order (backward returns these).
    optional: tensors that may be None (bias).
    integer: tensors of integer type (cross_entropy's class-index target, embedding's indices).
    boolean: tensors of boolean type (a boolean attention mask).
    output_shape: ``(shapes, hparams) -> shape`` of the output; raises InvalidConfig where
        torch would reject the configuration. A layer with several outputs returns
        ``{output name: shape or None}`` (None: that output is absent in this case).
    outputs: the names of forward's outputs, in order. One output is called ``output``; a layer
        with several returns them as a tuple from forward (``((out, new_running_mean, ...), cache)``).
    differentiable_outputs: the outputs that get an upstream gradient, in order (default: all).
        backward receives their upstream gradients as a tuple, or as one array when there is one.
    """

    name: str
    family: str
    tensors: tuple[str, ...]
    differentiable: tuple[str, ...]
    hypers: tuple[Hyper, ...]
    output_shape: Callable[[Mapping[str, Shape], Mapping[str, Any]], Any]
    optional: frozenset[str] = frozenset()
    integer: frozenset[str] = frozenset()
    torch_function: str = ""
    outputs: tuple[str, ...] = ("output",)
    differentiable_outputs: tuple[str, ...] | None = None
    boolean: frozenset[str] = frozenset()
    hyper_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hyper_names", tuple(h.name for h in self.hypers))
        if self.differentiable_outputs is None:
            object.__setattr__(self, "differentiable_outputs", self.outputs)
        if not self.torch_function:
            object.__setattr__(self, "torch_function", f"torch.nn.functional.{self.name}")

    def hyper(self, name: str) -> Hyper:
        for hyper in self.hypers:
            if hyper.name == name:
                return hyper
        raise KeyError(name)

    @property
    def compared(self) -> tuple[str, ...]:
        """Names of the compared tensors: the outputs, then grad_<tensor> in forward's order."""
        return self.outputs + tuple(f"grad_{name}" for name in self.differentiable)

    @property
    def is_update_rule(self) -> bool:
        """An optimizer update rule: a pure ``<rule>_step`` called step after step, not forward/backward."""
        return self.family == "optimizer"

    @property
    def multi_output(self) -> bool:
        return len(self.outputs) > 1

    def output_shapes(self, shapes: Mapping[str, Shape | None], hparams: Mapping[str, Any]) -> dict[str, Shape | None]:
        """``{output name: shape}`` (None for an output absent in this case); raises InvalidConfig."""
        shape = self.output_shape(shapes, hparams)
        if isinstance(shape, Mapping):
            return {name: None if shape.get(name) is None else tuple(shape[name]) for name in self.outputs}
        return {self.outputs[0]: tuple(shape)}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfig(message)


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling output size: floor or ceil of (size + 2 pad - d (k - 1) - 1) / s, plus 1.

    With ceil_mode, a last window that would start in the right padding is dropped.
    """
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


# --- output shapes (and torch's validity rules) -------------------------------------------


def _conv2d_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    n, c, h, w = shapes["input"]
    f, c_per_group, kh, kw = shapes["weight"]
    groups = hp["groups"]
    _check(groups >= 1 and c % groups == 0 and f % groups == 0,
           f"groups={groups} must divide in_channels={c} and out_channels={f}")
    _check(c_per_group == c // groups, f"weight has {c_per_group} input channels, expected {c // groups}")
    if shapes.get("bias") is not None:
        _check(tuple(shapes["bias"]) == (f,), f"bias shape {shapes['bias']} != ({f},)")
    stride, dilation, padding = hp["stride"], hp["dilation"], hp["padding"]
    if padding == "same":
        _check(stride == (1, 1), "padding='same' is not supported for strided convolutions")
        return (n, f, h, w)
    pad = (0, 0) if padding == "valid" else padding
    out = []
    for size, k, s, p, d in zip((h, w), (kh, kw), stride, pad, dilation):
        _check(d * (k - 1) + 1 <= size + 2 * p,
               f"dilated kernel {d * (k - 1) + 1} is larger than the padded input {size + 2 * p}")
        out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
    return (n, f, out[0], out[1])


def _pool_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any], *, has_padding: bool = True,
                has_dilation: bool = True) -> Shape:
    n, c, h, w = shapes["input"]
    kernel, stride = hp["kernel_size"], hp["stride"]
    pad = hp["padding"] if has_padding else (0, 0)
    dilation = hp["dilation"] if has_dilation else (1, 1)
    out = []
    for size, k, s, p, d in zip((h, w), kernel, stride, pad, dilation):
        _check(k >= 1 and s >= 1 and d >= 1, "kernel_size, stride and dilation must be positive")
        _check(p <= k // 2, f"padding {p} should be at most half of kernel_size {k}")
        o = pool_output_size(size, k, s, p, d, hp.get("ceil_mode", False))
        _check(o >= 1, f"output size {o} is too small (input {size}, kernel {k}, dilation {d})")
        # torch accepts a first window made only of padding (dilation > size) but then reads out of
        # bounds in the backward; such cases would test torch's bug, not the implementation.
        _check(any(0 <= j * d - p < size for j in range(k)), "the first window lies entirely in the padding")
        out.append(o)
    return (n, c, out[0], out[1])


def _avg_pool_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    _check(hp["divisor_override"] is None or hp["divisor_override"] > 0, "divisor_override must be positive")
    return _pool_shape(shapes, hp, has_dilation=False)


def _lp_pool_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    _check(hp["norm_type"] > 0, "norm_type must be positive")
    return _pool_shape(shapes, hp, has_padding=False, has_dilation=False)


def _adaptive_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    n, c, h, w = shapes["input"]
    oh, ow = hp["output_size"]
    _check(oh >= 1 and ow >= 1, "output_size must be positive")
    return (n, c, oh, ow)


def _linear_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    *lead, d_in = shapes["input"]
    d_out, w_in = shapes["weight"]
    _check(w_in == d_in, f"weight in_features {w_in} != input features {d_in}")
    if shapes.get("bias") is not None:
        _check(tuple(shapes["bias"]) == (d_out,), f"bias shape {shapes['bias']} != ({d_out},)")
    return (*lead, d_out)


def _flatten_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    shape = shapes["input"]
    ndim = len(shape)
    start, end = hp["start_dim"], hp["end_dim"]
    _check(-ndim <= start < ndim and -ndim <= end < ndim, f"dims ({start}, {end}) out of range for {ndim}-d input")
    start, end = start % ndim, end % ndim
    _check(start <= end, "flatten() has invalid args: start_dim cannot come after end_dim")
    return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])


def _same_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    shape = shapes["input"]
    if "dim" in hp:
        _check(-len(shape) <= hp["dim"] < len(shape), f"dim {hp['dim']} out of range for {len(shape)}-d input")
    return tuple(shape)


def _loss_shape(shapes: Mapping[str, Shape], hp: Mapping[str, Any]) -> Shape:
    _check(hp["reduction"] in ("mean", "sum"), f"reduction {hp['reduction']!r} must be 'mean' or 'sum'")
    _check(tuple(shapes["target"]) == tuple(shapes["input"]), "target shape must equal input shape")
    return ()


def _kernel_default(hp: Mapping[str, Any]) -> Any:
    return hp.get("kernel_size")


_POOL_COMMON = (
    Hyper("kernel_size", None, pair=True),
    Hyper("stride", _kernel_default, pair=True),
)
_REDUCTION = (Hyper("reduction", "mean"),)

_SPECS = (
    LayerSpec("conv2d", "conv", ("input", "weight", "bias"), ("input", "weight", "bias"),
              (Hyper("stride", (1, 1), pair=True), Hyper("padding", (0, 0), pair=True),
               Hyper("dilation", (1, 1), pair=True), Hyper("groups", 1)),
              _conv2d_shape, optional=frozenset({"bias"})),
    LayerSpec("max_pool2d", "pooling", ("input",), ("input",),
              _POOL_COMMON + (Hyper("padding", (0, 0), pair=True), Hyper("dilation", (1, 1), pair=True),
                              Hyper("ceil_mode", False)),
              _pool_shape),
    LayerSpec("avg_pool2d", "pooling", ("input",), ("input",),
              _POOL_COMMON + (Hyper("padding", (0, 0), pair=True), Hyper("ceil_mode", False),
                              Hyper("count_include_pad", True), Hyper("divisor_override", None)),
              _avg_pool_shape),
    LayerSpec("lp_pool2d", "pooling", ("input",), ("input",),
              (Hyper("norm_type", None),) + _POOL_COMMON + (Hyper("ceil_mode", False),),
              _lp_pool_shape),
    LayerSpec("adaptive_avg_pool2d", "pooling", ("input",), ("input",),
              (Hyper("output_size", None, pair=True),), _adaptive_shape),
    LayerSpec("adaptive_max_pool2d", "pooling", ("input",), ("input",),
              (Hyper("output_size", None, pair=True),), _adaptive_shape),
    LayerSpec("linear", "dense", ("input", "weight", "bias"), ("input", "weight", "bias"), (),
              _linear_shape, optional=frozenset({"bias"})),
    LayerSpec("flatten", "dense", ("input",), ("input",),
              (Hyper("start_dim", 0), Hyper("end_dim", -1)), _flatten_shape, torch_function="torch.flatten"),
    LayerSpec("relu", "activation", ("input",), ("input",), (), _same_shape),
    LayerSpec("leaky_relu", "activation", ("input",), ("input",), (Hyper("negative_slope", 0.01),), _same_shape),
    LayerSpec("sigmoid", "activation", ("input",), ("input",), (), _same_shape, torch_function="torch.sigmoid"),
    LayerSpec("tanh", "activation", ("input",), ("input",), (), _same_shape, torch_function="torch.tanh"),
    LayerSpec("softmax", "activation", ("input",), ("input",), (Hyper("dim", None),), _same_shape),
    LayerSpec("log_softmax", "activation", ("input",), ("input",), (Hyper("dim", None),), _same_shape),
    LayerSpec("mse_loss", "loss", ("input", "target"), ("input",), _REDUCTION, _loss_shape),
    LayerSpec("binary_cross_entropy_with_logits", "loss", ("input", "target"), ("input",), _REDUCTION,
              _loss_shape),
)

# Each family's specs live in a module of their own, built on the definitions above (hence the late imports).
from .conv_nd import CONV_ND_SPECS  # noqa: E402
from .elementwise_specs import ELEMENTWISE_SPECS  # noqa: E402
from .norm import NORM_SPECS  # noqa: E402
from .optim_specs import OPTIM_SPECS  # noqa: E402
from .sequence_specs import SEQUENCE_SPECS  # noqa: E402

LAYERS: dict[str, LayerSpec] = {spec.name: spec for spec in
                                _SPECS + CONV_ND_SPECS + NORM_SPECS + ELEMENTWISE_SPECS + SEQUENCE_SPECS
                                + OPTIM_SPECS}


def layer_spec(name: str) -> LayerSpec:
    """The spec of a layer by torch's name; KeyError names the allowed values."""
    try:
        return LAYERS[name]
    except KeyError:
        raise KeyError(f"unknown layer {name!r}; allowed: {', '.join(LAYERS)}") from None
