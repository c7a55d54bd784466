"""Building a user's layer object from its own constructor signature.

Each constructor parameter is matched to what refcheck knows about the case: a shape
(``in_channels``, ``num_kernels``, ``kernel_shape``...), a hyperparameter (``stride``, ``pad``...),
the parameters themselves when the constructor takes them (``Convolution(W, b, stride=1, pad=0)``),
a bias flag, or a learning rate. Names are compared in lower case without underscores, through
the aliases below; a mapping file can name the rest (``[layers.conv2d.args]``).
"""
from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ALIASES", "BIAS_ARGUMENTS", "LEARNING_RATE_ARGUMENTS", "WEIGHT_ARGUMENTS", "Constructor",
           "plain_name"]


def plain_name(name: str) -> str:
    return name.lower().replace("_", "")


_ALIAS_LISTS: dict[str, tuple[str, ...]] = {
    "in_channels": ("in_channels", "in_ch", "input_channels", "n_channels", "num_channels", "channels_in", "c_in",
                    "in_c", "channels", "in_chans", "input_depth", "in_depth"),
    "out_channels": ("out_channels", "out_ch", "output_channels", "num_filters", "n_filters", "filters",
                     "num_kernels", "n_kernels", "channels_out", "c_out", "out_c", "nb_filters", "filter_count",
                     "n_out_channels", "out_chans", "num_output"),
    "kernel_size": ("kernel_size", "kernel", "ksize", "filter_size", "kernel_shape", "convolution_shape",
                    "pool_size", "pool_shape", "pooling_shape", "window", "window_size", "filter_shape",
                    "field_size", "pool", "size"),
    "kernel_h": ("pool_h", "pool_height", "kernel_h", "kernel_height", "filter_h", "filter_height", "kh", "field_h"),
    "kernel_w": ("pool_w", "pool_width", "kernel_w", "kernel_width", "filter_w", "filter_width", "kw", "field_w"),
    "stride": ("stride", "strides", "stride_shape", "step", "stride_size"),
    "padding": ("padding", "pad", "pads", "zero_padding", "pad_size"),
    "dilation": ("dilation", "dilation_rate", "dilations"),
    "groups": ("groups", "group", "n_groups", "num_groups"),
    "in_features": ("in_features", "input_size", "input_dim", "n_in", "in_dim", "fan_in", "inputs", "in_size",
                    "input_features", "n_inputs", "num_inputs", "in_units", "n_input", "input_units"),
    "out_features": ("out_features", "output_size", "output_dim", "n_out", "out_dim", "fan_out", "units",
                     "outputs", "out_size", "output_features", "n_outputs", "num_outputs", "out_units", "n_units",
                     "neurons", "n_output", "output_units", "n_neurons"),
    "negative_slope": ("negative_slope", "alpha", "slope", "leak", "leakiness"),
    "dim": ("dim", "axis"),
    "start_dim": ("start_dim",),
    "end_dim": ("end_dim",),
    "reduction": ("reduction",),
    "ignore_index": ("ignore_index", "ignore_label", "ignore_class"),
    "label_smoothing": ("label_smoothing", "smoothing"),
    "ceil_mode": ("ceil_mode",),
    "count_include_pad": ("count_include_pad",),
    "divisor_override": ("divisor_override",),
    "norm_type": ("norm_type", "p", "norm"),
    "output_size": ("output_size",),
}
ALIASES = {plain_name(alias): target for target, aliases in _ALIAS_LISTS.items() for alias in aliases}
WEIGHT_ARGUMENTS = frozenset(plain_name(n) for n in ("W", "weight", "weights", "kernel_weights", "init_weights",
                                                     "initial_weights", "kernels", "filter_weights"))
BIAS_ARGUMENTS = frozenset(plain_name(n) for n in ("b", "bias", "biases", "init_bias", "initial_bias"))
BIAS_FLAGS = frozenset(plain_name(n) for n in ("bias", "use_bias", "has_bias", "with_bias", "add_bias"))
LEARNING_RATE_ARGUMENTS = frozenset(plain_name(n) for n in ("learning_rate", "lr", "eta", "learningrate", "step_size",
                                                            "alpha_lr"))
_NOT_KEYWORDS = frozenset({"weight", "bias", "bias_flag", "learning_rate"})
_PAIR_TARGETS = ("kernel_size", "stride", "padding", "dilation", "output_size")


@dataclass(frozen=True)
class Constructor:
    """How to call one class's constructor.

    targets: constructor parameter -> what it receives ("stride", "in_channels", "weight", "bias",
        "bias_flag", "learning_rate"); parameters not listed are left at their default.
    forms: pair-valued targets passed as an int ("int"), an (h, w) tuple ("pair"; "numeric pair"
        when the code takes no padding mode such as 'same') or (C, kh, kw) ("chw", for a kernel
        shape that includes the input channels).
    offsets: added to an int-valued hyperparameter before it is passed (a dilation counted from 0).
    """

    factory: Callable[..., Any]
    targets: Mapping[str, str]
    forms: Mapping[str, str] = field(default_factory=dict)
    offsets: Mapping[str, int] = field(default_factory=dict)
    takes_kwargs: bool = False

    @classmethod
    def of(cls, factory: Callable[..., Any], renames: Mapping[str, str] | None = None,
           offsets: Mapping[str, int] | None = None, parametric: bool = False) -> Constructor:
        """Match a constructor's parameters by name (``renames``: contract name -> user's name win)."""
        targets: dict[str, str] = {}
        by_user = {user: target for target, user in (renames or {}).items()}
        try:
            parameters = list(inspect.signature(factory).parameters.values())
        except (TypeError, ValueError):
            parameters = []
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        for parameter in parameters:
            if parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
                continue
            name, plain = parameter.name, plain_name(parameter.name)
            if name in by_user:
                targets[name] = by_user[name]
            elif parametric and plain in BIAS_FLAGS and isinstance(parameter.default, bool):
                targets[name] = "bias_flag"
            elif parametric and plain in WEIGHT_ARGUMENTS:
                targets[name] = "weight"
            elif parametric and plain in BIAS_ARGUMENTS:
                targets[name] = "bias"
            elif plain in LEARNING_RATE_ARGUMENTS:
                targets[name] = "learning_rate"
            elif plain in ALIASES:
                targets[name] = ALIASES[plain]
        return cls(factory, targets, {}, dict(offsets or {}), takes_kwargs)

    def hyperparameters(self) -> frozenset[str]:
        """The contract hyperparameters the constructor takes."""
        named = {"kernel_size" if t in ("kernel_h", "kernel_w") else t for t in self.targets.values()}
        return frozenset(t for t in named
                         if t not in ("in_channels", "out_channels", "in_features", "out_features", "weight",
                                      "bias", "bias_flag", "learning_rate"))

    def takes(self, target: str) -> bool:
        return target in self.targets.values()

    def pair_targets(self) -> list[str]:
        return [t for t in self.targets.values() if t in _PAIR_TARGETS]

    def with_forms(self, forms: Mapping[str, str]) -> Constructor:
        return Constructor(self.factory, self.targets, dict(forms), self.offsets, self.takes_kwargs)

    def arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the constructor from contract values (``values[target]``)."""
        arguments = {}
        for parameter, target in self.targets.items():
            if target in ("kernel_h", "kernel_w") and "kernel_size" in values:
                kernel = values["kernel_size"]
                kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
                arguments[parameter] = int(kernel[0 if target == "kernel_h" else 1])
                continue
            if target not in values:
                continue
            arguments[parameter] = self._form(target, values[target], values)
        if self.takes_kwargs:
            # A ``**kwargs`` constructor gets the rest under torch.nn's names.
            taken = set(self.targets.values())
            for name, value in values.items():
                if name not in taken and name not in _NOT_KEYWORDS and name not in arguments:
                    arguments[name] = self._form(name, value, values)
            if "bias_flag" in values and not taken & {"bias", "bias_flag"}:
                arguments["bias"] = values["bias_flag"]
        return arguments

    def _form(self, target: str, value: Any, values: Mapping[str, Any]) -> Any:
        if target in self.offsets and isinstance(value, tuple):
            value = tuple(v + self.offsets[target] for v in value)
        elif target in self.offsets and isinstance(value, int):
            value = value + self.offsets[target]
        form = self.forms.get(target, "pair")
        if not isinstance(value, tuple):
            return value
        if form == "int":
            return value[0]
        if form == "chw":
            return (int(values.get("in_channels", 1)), *value)
        return value

    def unsupported(self, hparams: Mapping[str, Any]) -> str | None:
        """Why a case's hyperparameters cannot be given in the forms chosen: an int for a non-square
        pair (a kernel's size read from the weight's shape) or for a padding mode ('same', 'valid')."""
        for target, form in self.forms.items():
            if form == "numeric pair" and isinstance(hparams.get(target), str):
                return f"{self.name} takes no padding mode for {target}; case needs {target}={hparams[target]!r}"
            if form != "int":
                continue
            value = hparams.get(target)
            if value is None and target == "kernel_size" and hparams.get("weight_shape") is not None:
                value = tuple(hparams["weight_shape"][2:])  # (F, C/groups, kh, kw)
            if isinstance(value, tuple) and len(set(value)) > 1:
                return f"{self.name} takes one int for {target} (both axes); case needs {target}={value!r}"
            if isinstance(value, str):
                return f"{self.name} takes an int for {target}; case needs {target}={value!r}"
        return None

    @property
    def name(self) -> str:
        return getattr(self.factory, "__qualname__", repr(self.factory))

    def build(self, values: Mapping[str, Any]) -> Any:
        arguments = self.arguments(values)
        try:
            return self.factory(**arguments)
        except TypeError as error:
            # A ``**kwargs`` constructor that hands them on to a base that does not take torch's
            # names (a Keras-style Layer(name, dtype)): built again with its own arguments alone.
            if not self.takes_kwargs or "unexpected keyword argument" not in str(error):
                raise
        return self.factory(**{name: value for name, value in arguments.items() if name in self.targets})


def form_choices(constructor: Constructor, limit: int = 16) -> list[dict[str, str]]:
    """The argument forms worth probing, most likely first.

    Each pair-valued argument is tried as an (h, w) tuple and as one int (a kernel shape also as
    (C, kh, kw)); an argument whose default is an int is tried as an int first.
    """
    try:
        defaults = {p.name: p.default for p in inspect.signature(constructor.factory).parameters.values()}
    except (TypeError, ValueError):
        defaults = {}
    options = []
    for parameter, target in constructor.targets.items():
        if target not in _PAIR_TARGETS:
            continue
        forms = ["pair", "int"]
        if isinstance(defaults.get(parameter), int) and not isinstance(defaults.get(parameter), bool):
            forms = ["int", "pair"]
        if target == "kernel_size":
            forms.append("chw")
        options.append((target, forms))
    choices = [dict(zip([t for t, _ in options], combination))
               for combination in itertools.product(*[forms for _, forms in options])]
    choices.sort(key=lambda choice: sum(forms.index(choice[t]) for t, forms in options))
    return choices[:limit] or [{}]
