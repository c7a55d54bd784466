"""Object-style 1-D/3-D and transposed convolutions, 1-D pooling, normalisations, dropout and
embeddings (torch.nn class names and the usual aliases).

A class with ``forward`` and ``backward`` methods, built with torch.nn's keywords (only those its
constructor accepts, so the keywords it accepts define what it supports), a fresh object per case:

=============================================  ==========================================================
class (normalised name)                        how it is called
=============================================  ==========================================================
Conv1d, Conv3d, ConvTranspose2d (Deconv2d...)  ``weight``/``bias`` set (or ``W``/``b``...); ``forward(x)``,
                                               ``backward(dout) -> dx``; gradients read from ``dW``,
                                               ``grad_weight``... (or returned as ``(dx, dw, db)``)
MaxPool1d, AvgPool1d                           ``forward(x)``, ``backward(dout) -> dx``
BatchNorm1d, BatchNorm2d, BatchNorm,           ``running_mean``/``running_var`` and ``weight``/``bias``
InstanceNorm2d                                 (or ``gamma``/``beta``) set, ``training`` set; the updated
                                               running statistics read back after forward
LayerNorm, GroupNorm                           ``weight``/``bias`` (or ``gamma``/``beta``) set
Dropout(p)                                     the case's keep mask imposed: passed as ``mask`` when forward
                                               takes one, else through numpy's random draws, then checked
                                               from forward's output where x != 0 (skipped when it cannot be)
Embedding(num_embeddings, embedding_dim)       ``weight`` (or ``W``) set; ``forward(indices)``,
                                               ``backward(dout)``; the weight gradient read back
=============================================  ==========================================================

BatchNorm1d takes (N, C) and (N, C, L) cases, BatchNorm2d (N, C, H, W) ones; a module with both has
each used for its own cases.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..specs import Unsupported, layer_spec
from .contract import LayerFunctions, user_name
from .holders import holder_gradient, set_array, unwrapped
from .names import normalise

__all__ = ["CONVNORM_CLASS_FAMILIES", "adapt_objects_convnorm", "convnorm_class_functions"]

CONVNORM_CLASS_FAMILIES: dict[str, tuple[str, ...]] = {
    "conv1d": ("conv1d", "convolution1d"),
    "conv3d": ("conv3d", "convolution3d"),
    "conv_transpose2d": ("convtranspose2d", "conv2dtranspose", "convtranspose", "deconv2d", "deconv",
                         "deconvolution", "deconvolution2d", "transposedconv2d", "transposedconvolution"),
    "max_pool1d": ("maxpool1d", "maxpooling1d"),
    "avg_pool1d": ("avgpool1d", "avgpooling1d", "averagepooling1d"),
    "batch_norm": ("batchnorm1d", "batchnorm2d", "batchnorm", "batchnormalization", "spatialbatchnorm",
                   "batchnormalization2d"),
    "layer_norm": ("layernorm", "layernormalization"),
    "group_norm": ("groupnorm", "groupnormalization", "spatialgroupnorm"),
    "instance_norm": ("instancenorm2d", "instancenorm", "instancenormalization"),
    "dropout": ("dropout", "inverteddropout"),
    "embedding": ("embedding", "wordembedding", "embeddings"),
}
_BY_NAME = {name: layer for layer, names in CONVNORM_CLASS_FAMILIES.items() for name in names}
# Input ranks a batch-norm class takes, by normalised name (absent: any).
_RANKS = {"batchnorm1d": (2, 3), "batchnorm2d": (4,), "spatialbatchnorm": (4,), "batchnormalization2d": (4,)}
_ALIASES = {"weight": ("weight", "gamma", "W", "weights", "kernel", "embeddings"), "bias": ("bias", "beta", "b"),
            "running_mean": ("running_mean", "moving_mean"),
            "running_var": ("running_var", "moving_var", "running_variance")}
_RANDOM_NAMES = ("rand", "random_sample", "random", "uniform")


def _keywords(factory: Callable[..., Any]) -> frozenset[str] | None:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL)


# Other names constructors give torch.nn's keywords (Deep Learning from Scratch: dropout_ratio).
_KEYWORD_ALIASES = {"p": ("dropout_ratio", "drop_ratio", "dropout_rate", "drop_rate", "drop_prob", "p_drop", "rate"),
                    "eps": ("epsilon",)}
# Keywords of forward that take the training flag.
_TRAINING_KEYWORDS = ("training", "train", "is_training", "train_flg", "train_mode")


def _build(factory: Callable[..., Any], **candidates: Any) -> Any:
    """``factory`` called with the candidates it takes, under torch.nn's name or an alias."""
    keywords = _keywords(factory)
    if keywords is None:
        return factory(**candidates)
    arguments = {}
    for name, value in candidates.items():
        taken = next((alias for alias in (name, *_KEYWORD_ALIASES.get(name, ())) if alias in keywords), None)
        if taken is not None:
            arguments[taken] = value
    return factory(**arguments)


def _takes(factory: Callable[..., Any], name: str) -> bool:
    keywords = _keywords(factory)
    return keywords is None or any(alias in keywords for alias in (name, *_KEYWORD_ALIASES.get(name, ())))


def _training_keywords(obj: Any, training: bool) -> dict[str, bool]:
    keywords = _keywords(obj.forward) or frozenset()
    return {name: training for name in _TRAINING_KEYWORDS if name in keywords}


def _place(obj: Any, which: str, value: np.ndarray | None) -> None:
    """Write a parameter (a copy) under every alias the object already has, else under torch's name."""
    if value is None:
        return
    present = [name for name in _ALIASES[which] if hasattr(obj, name)] or [which]
    for name in present:
        set_array(obj, name, np.array(value, copy=True))


def _read(obj: Any, which: str) -> Any:
    for name in _ALIASES[which]:
        value = getattr(obj, name, None)
        if value is not None:
            return unwrapped(value)
    return None


def _gradient(obj: Any, which: str) -> Any:
    for alias in _ALIASES[which]:  # a holder's own gradient (self.weight = Parameter(...); .grad)
        held = holder_gradient(getattr(obj, alias, None))
        if held is not None:
            return held
    names = [form.format(alias) for alias in _ALIASES[which] for form in ("grad_{}", "d{}", "{}_grad", "grad_{}s")]
    for name in dict.fromkeys(names):
        value = getattr(obj, name, None)
        if value is not None:
            return value
    raise AttributeError(f"{type(obj).__name__}.backward left no {which} gradient: none of "
                         f"{', '.join(dict.fromkeys(names))} is set")


def _gradients(obj: Any, returned: Any, parameters: list[tuple[str, Any]]) -> tuple[Any, ...]:
    """(grad_input, grad of each parameter): returned as a tuple by backward, or read from the object."""
    if isinstance(returned, (tuple, list)) and len(returned) == 1 + len(parameters):
        grads = list(returned)
        return (grads[0], *(None if value is None else grad for grad, (_, value) in zip(grads[1:], parameters)))
    return (returned, *(None if value is None else _gradient(obj, which) for which, value in parameters))


def _conv(layer: str, factory: Callable[..., Any]) -> tuple[Callable, Callable]:
    def forward(x, weight, bias, **hparams):
        groups = hparams.get("groups", 1)
        transposed = layer == "conv_transpose2d"
        in_channels = int(weight.shape[0]) if transposed else int(x.shape[1])
        out_channels = int(weight.shape[1]) * groups if transposed else int(weight.shape[0])
        kernel = tuple(int(k) for k in weight.shape[2:])
        obj = _build(factory, in_channels=in_channels, out_channels=out_channels,
                     kernel_size=kernel[0] if layer == "conv1d" else kernel, bias=bias is not None, **hparams)
        _place(obj, "weight", weight)
        _place(obj, "bias", bias if bias is not None else None)
        if bias is None and getattr(obj, "bias", None) is not None:
            _place(obj, "bias", np.zeros(out_channels, dtype=weight.dtype))
        return obj.forward(x), (obj, weight, bias)

    def backward(dout, cache):
        obj, weight, bias = cache
        return _gradients(obj, obj.backward(dout), [("weight", weight), ("bias", bias)])

    return forward, backward


def _norm(layer: str, classes: list[tuple[str, Callable[..., Any]]]) -> tuple[Callable, Callable]:
    def pick(rank: int) -> Callable[..., Any]:
        for name, factory in classes:
            if rank in _RANKS.get(normalise(name), (rank,)):
                return factory
        names = ", ".join(name for name, _ in classes)
        raise Unsupported(f"{names} takes no {rank}-d input (BatchNorm1d: (N, C) or (N, C, L); "
                          "BatchNorm2d: (N, C, H, W))")

    def forward(x, *tensors, **hparams):
        stats = layer in ("batch_norm", "instance_norm")
        running_mean, running_var, weight, bias = tensors if stats else (None, None, *tensors)
        channels = int(x.shape[1])
        shape = hparams.get("normalized_shape")
        sizes = {"num_features": channels, "num_channels": channels, "channels": channels, "dim": channels,
                 "affine": weight is not None, "elementwise_affine": weight is not None,
                 "track_running_stats": running_mean is not None, "eps": hparams["eps"]}
        if shape is not None:
            sizes.update(normalized_shape=tuple(shape), dim=tuple(shape) if len(shape) > 1 else int(shape[0]))
        if "num_groups" in hparams:
            sizes["num_groups"] = hparams["num_groups"]
        if "momentum" in hparams:
            sizes["momentum"] = hparams["momentum"]
        # A constructor that takes the parameters themselves (Deep Learning from Scratch's
        # BatchNormalization(gamma, beta, running_mean=None, running_var=None)) gets them.
        dtype = x.dtype
        sizes.update(gamma=np.ones(channels, dtype) if weight is None else np.array(weight, copy=True),
                     beta=np.zeros(channels, dtype) if bias is None else np.array(bias, copy=True))
        if running_mean is not None:
            sizes.update(running_mean=np.array(running_mean, copy=True), running_var=np.array(running_var, copy=True))
        factory = pick(x.ndim)
        obj = _build(factory, **sizes)
        for name in ("eps", "momentum"):
            if name not in hparams:
                continue
            if hasattr(obj, name):
                setattr(obj, name, hparams[name])
            elif not _takes(factory, name) and hparams[name] != layer_spec(layer).hyper(name).default:
                # Neither an argument nor an attribute: the code's own value is unknown, only torch's
                # default is checked (a hard-coded value that differs from it shows there).
                raise Unsupported(f"{user_name('object: ' + factory.__name__)} takes no {name} "
                                  f"(no argument or attribute of that name); case needs {name}={hparams[name]!r}")
        for which, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                             ("bias", bias)):
            _place(obj, which, value)
        training = hparams.get("training", hparams.get("use_input_stats", True))
        obj.training = training
        out = obj.forward(x, **_training_keywords(obj, training))
        parameters = [("weight", weight), ("bias", bias)]
        if not stats:
            return out, (obj, parameters)
        new_mean = None if running_mean is None else np.array(_read(obj, "running_mean"))
        new_var = None if running_var is None else np.array(_read(obj, "running_var"))
        return (out, new_mean, new_var), (obj, parameters)

    def backward(dout, cache):
        obj, parameters = cache
        return _gradients(obj, obj.backward(dout), parameters)

    return forward, backward


def _impose_mask(obj: Any, x: np.ndarray, keep: np.ndarray, p: float, origin: str,
                 extra: dict[str, bool] | None = None) -> np.ndarray:
    """forward with the case's keep mask: as an argument, else through numpy's draws (either convention)."""
    extra = extra or {}
    if "mask" in (_keywords(obj.forward) or ()):
        return obj.forward(x, mask=keep, **extra)
    for kept_below in (True, False):
        # Uniform draws below 1 - p exactly where the mask keeps ("rand < 1 - p"), or above p ("rand > p").
        draws = np.where(keep, (1.0 - p) / 2.0, 1.0 - p / 2.0) if kept_below else np.where(keep, (1.0 + p) / 2.0,
                                                                                           p / 2.0)
        saved = {name: getattr(np.random, name) for name in (*_RANDOM_NAMES, "binomial")}
        try:
            for name in _RANDOM_NAMES:
                setattr(np.random, name, lambda *args, _d=draws, **kwargs: _d.copy())
            np.random.binomial = lambda *args, **kwargs: keep.astype(np.int64)
            out = obj.forward(x, **extra)
        finally:
            for name, function in saved.items():
                setattr(np.random, name, function)
        nonzero = np.asarray(x) != 0
        if np.array_equal((np.asarray(out) != 0) & nonzero, keep & nonzero):
            return out
    raise Unsupported(f"{user_name(origin)} draws its own dropout mask and refcheck could not impose the case's "
                      "(recovered from forward's output where x != 0); draw it with np.random.rand or "
                      "np.random.binomial, or let forward take a mask argument")


def _dropout(factory: Callable[..., Any], origin: str) -> tuple[Callable, Callable]:
    def forward(x, mask, *, p=0.5, training=True):
        obj = _build(factory, p=p)
        if not _takes(factory, "p"):
            # No argument for the drop probability: an attribute the object already has, else no way to set it.
            present = [name for name in ("p", *_KEYWORD_ALIASES["p"]) if hasattr(obj, name)]
            if not present:
                raise Unsupported(f"{user_name(origin)} takes no drop probability (p, dropout_ratio, ...): "
                                  "refcheck cannot give it the case's")
            setattr(obj, present[0], p)
        obj.training = training
        keep = np.asarray(mask, dtype=bool)
        if not training or p == 0:
            return obj.forward(x, **_training_keywords(obj, training)), obj
        return _impose_mask(obj, x, keep, p, origin, _training_keywords(obj, training)), obj

    def backward(dout, obj):
        return obj.backward(dout)

    return forward, backward


def _embedding(factory: Callable[..., Any]) -> tuple[Callable, Callable]:
    def forward(indices, weight, *, padding_idx=None):
        rows, dim = (int(n) for n in weight.shape)
        obj = _build(factory, num_embeddings=rows, embedding_dim=dim, vocab_size=rows, dim=dim,
                     padding_idx=padding_idx)
        _place(obj, "weight", weight)
        return obj.forward(indices), obj

    def backward(dout, obj):
        returned = obj.backward(dout)
        try:
            return (_gradient(obj, "weight"),)
        except AttributeError:
            if isinstance(returned, np.ndarray) and returned.shape == np.shape(_read(obj, "weight")):
                return (returned,)  # backward returned the weight gradient itself
            raise

    return forward, backward


def _pool(factory: Callable[..., Any]) -> tuple[Callable, Callable]:
    def forward(x, **hparams):
        obj = _build(factory, **hparams)
        return obj.forward(x), obj

    def backward(dout, obj):
        return obj.backward(dout)

    return forward, backward


def _accepted(layer: str, factories: list[Callable[..., Any]]) -> frozenset[str]:
    spec = layer_spec(layer)
    if layer in ("batch_norm", "instance_norm", "layer_norm", "group_norm", "dropout"):
        return frozenset(spec.hyper_names)  # set as attributes or passed by torch.nn's own argument names
    keywords = [_keywords(factory) for factory in factories]
    return frozenset(h for h in spec.hyper_names if all(k is None or h in k for k in keywords))


def adapt_objects_convnorm(module: ModuleType) -> dict[str, LayerFunctions]:
    """Contract LayerFunctions for the classes of ``module`` named as in CONVNORM_CLASS_FAMILIES."""
    classes: dict[str, list[tuple[str, Callable[..., Any]]]] = {}
    for name, cls in sorted(vars(module).items()):
        layer = _BY_NAME.get(normalise(name)) if inspect.isclass(cls) and not name.startswith("_") else None
        if layer and callable(getattr(cls, "forward", None)) and callable(getattr(cls, "backward", None)):
            classes.setdefault(layer, []).append((name, cls))
    return {layer: convnorm_class_functions(layer, named) for layer, named in classes.items()}


def convnorm_class_functions(layer: str, named: list[tuple[str, Callable[..., Any]]]) -> LayerFunctions:
    """LayerFunctions for the classes ``named`` ((name, class), BatchNorm1d and BatchNorm2d together)
    as ``layer``, one of CONVNORM_CLASS_FAMILIES' layers."""
    factory = named[0][1]
    origin = "object: " + ", ".join(name for name, _ in named) if layer == "batch_norm" else f"object: {named[0][0]}"
    if layer in ("conv1d", "conv3d", "conv_transpose2d"):
        forward, backward = _conv(layer, factory)
    elif layer in ("batch_norm", "instance_norm", "layer_norm", "group_norm"):
        forward, backward = _norm(layer, named if layer == "batch_norm" else named[:1])
    elif layer == "dropout":
        forward, backward = _dropout(factory, origin)
    elif layer == "embedding":
        forward, backward = _embedding(factory)
    else:
        forward, backward = _pool(factory)
    return LayerFunctions(layer, forward, backward, _accepted(layer, [f for _, f in named]), origin=origin,
                          adapter="object")
