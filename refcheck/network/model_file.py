"""Model case files: a short TOML file that names a network's layers in order.

A model file describes one network and its tiny training run::

    description = "conv -> relu -> max_pool -> flatten -> linear -> sigmoid -> binary_cross_entropy"
    input = [4, 1, 6, 6]           # the synthetic data set: N, C, H, W
    seed = 0                       # parameters and data are drawn from it
    steps = 5                      # training steps (each side follows its own trajectory)
    lr = 0.5                       # plain SGD, w - lr * dw, unless [optimizer] names a rule

    [optimizer]                    # optional: an update rule and its torch.optim hyperparameters
    rule = "adam"                  # sgd, rmsprop, adam, adamw
    lr = 0.01

    [model]                        # optional: a CS231n-style class (params dict, loss(X, y))
    class = "ThreeLayerConvNet"
    args = { num_filters = 2, filter_size = 3 }
    reg = 0.1                      # the class's regularisation: reg_scale * reg * sum(W**2)

    [[layers]]                     # torch's layer names and hyperparameters, in order
    layer = "conv2d"
    out_channels = 2
    kernel_size = [3, 3]
    names = { weight = "W1", bias = "b1" }     # the model's parameter names
    layouts = { weight = "(kh, kw, C, F)" }    # the class's layout, if not torch's

A parameter layout names torch's axes in the class's order: ``(out, in)`` / ``(in, out)`` for
linear, ``(F, C, kh, kw)`` and its permutations for conv2d. Malformed files raise
:class:`~refcheck.specs.CaseFileError` naming the file and the key.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..specs import LAYERS, CaseFileError, InvalidConfig, UsageError

__all__ = ["LOSSES", "LayerEntry", "NetworkModel", "load_model", "load_models", "shipped_models"]

LOSSES = ("binary_cross_entropy", "cross_entropy", "mse_loss")
UPDATE_RULES = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"}
PARAMETRIC = {"conv2d": ("out_channels", "kernel_size"), "linear": ("out_features",)}
TORCH_AXES = {"conv2d": ("F", "C", "kh", "kw"), "linear": ("out", "in")}
LAYER_KEYS = ("layer", "names", "layouts", "bias", "out_channels", "kernel_size", "out_features")
TOP_KEYS = ("name", "description", "input", "seed", "steps", "lr", "optimizer", "model", "layers")
MODEL_KEYS = ("class", "args", "reg", "reg_scale", "regularised")
SUPPORTED = ("conv2d", "relu", "leaky_relu", "tanh", "sigmoid", "max_pool2d", "avg_pool2d", "flatten", "linear",
             *LOSSES)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerEntry:
    """One layer of the network: torch's name, every hyperparameter (defaults filled in), the
    model's names for its parameters (``{"weight": "W1"}``), their layouts in a CS231n-style
    class, and the shapes of its tensors."""

    index: int
    layer: str
    hparams: dict[str, Any]
    names: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, tuple[int, ...]] = field(default_factory=dict)
    shapes: dict[str, Shape | None] = field(default_factory=dict)
    output_shape: Shape = ()

    @property
    def label(self) -> str:
        """``layer 3 (flatten)``: how reports name it."""
        return f"layer {self.index} ({self.layer})"


@dataclass(frozen=True)
class NetworkModel:
    """A parsed model file: the layers, the data set and the training run."""

    name: str
    description: str
    source: str
    input_shape: Shape
    layers: tuple[LayerEntry, ...]
    seed: int = 0
    steps: int = 3
    lr: float = 0.1
    rule: str = ""
    hyper: dict[str, Any] = field(default_factory=dict)
    model_class: str = ""
    class_args: dict[str, Any] = field(default_factory=dict)
    reg: float = 0.0
    reg_scale: float = 0.5
    regularised: tuple[str, ...] = ()

    @property
    def loss_layer(self) -> LayerEntry:
        return self.layers[-1]

    @property
    def parameters(self) -> dict[str, tuple[LayerEntry, str]]:
        """Parameter name -> (its layer, its tensor name), in layer order."""
        return {name: (entry, tensor) for entry in self.layers for tensor, name in entry.names.items()}

    @property
    def layouts(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> its layout in a CS231n-style class (as a permutation of torch's axes)."""
        return {name: layout for entry in self.layers for name, layout in entry.layouts.items()}

    @property
    def update(self) -> str:
        """The update rule in words."""
        if not self.rule:
            return f"plain SGD (w - lr * dw, lr={self.lr:g})"
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{self.rule} ({hyper}) as torch.optim.{UPDATE_RULES[self.rule]}"


def shipped_models() -> list[Path]:
    """The model files shipped inside the package, by name."""
    folder = Path(str(resources.files("refcheck") / "cases" / "networks"))
    return sorted(folder.glob("*.toml"))


def load_models(text: str | None) -> list[NetworkModel]:
    """``--model``: comma-separated model files or shipped model names (default: every shipped one)."""
    shipped = {path.stem: path for path in shipped_models()}
    if not text:
        return [load_model(path) for path in shipped.values()]
    models = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        path = Path(item)
        if item in shipped and not path.is_file():
            path = shipped[item]
        elif not path.is_file():
            raise UsageError(f"--model {item!r}: no such file and no shipped model of that name "
                             f"(shipped: {', '.join(shipped)})")
        models.append(load_model(path))
    if not models:
        raise UsageError("--model: give a model file or a shipped model name")
    return models


def _error(source: str, key: str, message: str) -> CaseFileError:
    return CaseFileError(source, key, message)


def _tuple(value: Any) -> Any:
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value


def _layout(source: str, key: str, layer: str, text: str) -> tuple[int, ...]:
    """A layout string as the permutation that takes torch's layout to the class's."""
    axes = TORCH_AXES.get(layer)
    tokens = tuple(t.strip() for t in str(text).strip("() ").split(","))
    if axes is None or sorted(tokens) != sorted(axes):
        raise _error(source, key, f"expected a permutation of {axes} for {layer}, got {text!r}")
    return tuple(axes.index(t) for t in tokens)


def _hparams(source: str, key: str, layer: str, table: dict[str, Any]) -> dict[str, Any]:
    spec = LAYERS[layer]
    known = {h.name: h for h in spec.hypers}
    given = {k: _tuple(v) for k, v in table.items() if k not in LAYER_KEYS or k in known}
    for name in given:
        if name not in known:
            raise _error(source, f"{key}.{name}", f"{layer} has no such hyperparameter "
                                                  f"(it has {', '.join(known) or 'none'})")
    hparams: dict[str, Any] = {}
    for name, hyper in known.items():
        if name in given:
            value = given[name]
            hparams[name] = (value,) * hyper.arity if hyper.pair and isinstance(value, int) else value
        elif layer == "flatten" and name == "start_dim":
            hparams[name] = 1  # a network keeps its batch axis
        else:
            hparams[name] = hyper.default_for(hparams)
    return hparams


def _entry(source: str, index: int, table: dict[str, Any], shape: Shape, last: bool) -> LayerEntry:
    key = f"layers[{index}]"
    layer = table.get("layer")
    if layer not in SUPPORTED:
        raise _error(source, f"{key}.layer", f"expected one of {', '.join(SUPPORTED)}, got {layer!r}")
    if (layer in LOSSES) != last:
        raise _error(source, f"{key}.layer", "the last layer, and only the last, is the loss "
                                             f"({', '.join(LOSSES)})")
    for needed in PARAMETRIC.get(layer, ()):
        if needed not in table:
            raise _error(source, f"{key}.{needed}", f"{layer} needs {needed}")
    hparams = _hparams(source, key, layer, table)
    shapes: dict[str, Shape | None] = {"input": shape}
    if layer == "conv2d":
        kernel = _tuple(table["kernel_size"])
        kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
        shapes["weight"] = (int(table["out_channels"]), shape[1] // hparams["groups"], *kernel)
    elif layer == "linear":
        shapes["weight"] = (int(table["out_features"]), shape[-1])
    if layer in PARAMETRIC:
        shapes["bias"] = (shapes["weight"][0],) if table.get("bias", True) else None
    if layer in LOSSES:
        shapes["target"] = (shape[0],) if layer == "cross_entropy" else shape
        shapes["weight"] = None
    try:
        output = LAYERS[layer].output_shape(shapes, hparams)
    except (InvalidConfig, KeyError, TypeError, ValueError, IndexError) as error:
        raise _error(source, key, f"{layer} on an input of shape {shape}: {error}") from None
    names = {str(t): str(n) for t, n in table.get("names", {}).items()}
    for tensor in [t for t in ("weight", "bias") if layer in PARAMETRIC and shapes.get(t) is not None]:
        names.setdefault(tensor, f"L{index}.{tensor}")
    for tensor in names:
        if tensor not in ("weight", "bias") or shapes.get(tensor) is None:
            raise _error(source, f"{key}.names.{tensor}", f"{layer} has no parameter {tensor!r} here")
    layouts = {names[t]: _layout(source, f"{key}.layouts.{t}", layer, text)
               for t, text in table.get("layouts", {}).items() if t == "weight"}
    return LayerEntry(index, layer, hparams, names, layouts, shapes, tuple(output))


def _float(source: str, table: dict[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error(source, key, f"expected a number, got {value!r}")
    return float(value)


def load_model(path: str | Path) -> NetworkModel:
    """Parse and check one model file (CaseFileError naming the file and key if it is malformed)."""
    path = Path(path)
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CaseFileError(source, "", str(error)) from None
    for key in data:
        if key not in TOP_KEYS:
            raise _error(source, key, f"unknown key (expected {', '.join(TOP_KEYS)})")
    shape = _tuple(data.get("input", ()))
    if not (isinstance(shape, tuple) and len(shape) >= 2 and all(isinstance(s, int) and s > 0 for s in shape)):
        raise _error(source, "input", f"expected the data set's shape, e.g. [4, 1, 6, 6], got {data.get('input')!r}")
    tables = data.get("layers", [])
    if not tables:
        raise _error(source, "layers", "no layers")
    entries = []
    for index, table in enumerate(tables):
        entry = _entry(source, index, table, shape, index == len(tables) - 1)
        entries.append(entry)
        shape = entry.output_shape
    optimizer = dict(data.get("optimizer", {}))
    rule = str(optimizer.pop("rule", ""))
    if rule and rule not in UPDATE_RULES:
        raise _error(source, "optimizer.rule", f"expected one of {', '.join(UPDATE_RULES)}, got {rule!r}")
    for key in optimizer if rule else ():
        if key not in {h.name for h in LAYERS[rule].hypers}:
            raise _error(source, f"optimizer.{key}", f"torch.optim's {UPDATE_RULES[rule]} has no such "
                                                     f"hyperparameter ({', '.join(h.name for h in LAYERS[rule].hypers)})")
    model = dict(data.get("model", {}))
    for key in model:
        if key not in MODEL_KEYS:
            raise _error(source, f"model.{key}", f"unknown key (expected {', '.join(MODEL_KEYS)})")
    weights = tuple(e.names["weight"] for e in entries if "weight" in e.names)
    regularised = tuple(model.get("regularised", weights))
    names = {n for e in entries for n in e.names.values()}
    for name in regularised:
        if name not in names:
            raise _error(source, "model.regularised", f"no parameter named {name!r}")
    steps = data.get("steps", 3)
    if not isinstance(steps, int) or steps < 1:
        raise _error(source, "steps", f"expected a positive int, got {steps!r}")
    return NetworkModel(
        name=str(data.get("name", path.stem)), description=str(data.get("description", "")), source=source,
        input_shape=_tuple(data["input"]), layers=tuple(entries), seed=int(data.get("seed", 0)), steps=steps,
        lr=_float(source, data, "lr", 0.1), rule=rule,
        hyper={k: _tuple(v) for k, v in optimizer.items()} if rule else {},
        model_class=str(model.get("class", "")), class_args={k: _tuple(v) for k, v in model.get("args", {}).items()},
        reg=_float(source, model, "reg", 0.0), reg_scale=_float(source, model, "reg_scale", 0.5),
        regularised=regularised)
