"""CS231n-style recurrent layers, temporal affine and the SVM loss, mapped onto the contract.

=====================================================  =====================================
CS231n functions (assignment 3 / 1)                    contract layer
=====================================================  =====================================
``rnn_step_forward(x, prev_h, Wx, Wh, b)``             rnn_tanh_cell
``rnn_forward(x, h0, Wx, Wh, b)``, x (N, T, D)         rnn_tanh (torch: sequence-first)
``lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)``    lstm_cell
``lstm_forward(x, h0, Wx, Wh, b)``                     lstm (with the step functions, see below)
``temporal_affine_forward(x, w, b)``, x (N, T, D)      linear on a 3-d input
``svm_loss(x, y) -> (loss, dx)``                       multi_margin_loss (p=1, margin=1, mean)
=====================================================  =====================================

Conversions, all exact:

- CS231n's weights are ``Wx (D, G*H)`` and ``Wh (H, G*H)``, torch's ``weight_ih (G*H, D)`` and
  ``weight_hh (G*H, H)``: the adapter passes the transposes and transposes the gradients back.
  CS231n has one bias ``b``; torch has ``bias_ih`` and ``bias_hh``, which enter only as their sum:
  ``b = bias_ih + bias_hh``, and each gets the gradient of ``b`` (zeros for a case without bias,
  whose gradients are then None).
- LSTM gate order: CS231n stacks the gates i, f, o, g; torch i, f, g, o. The adapter swaps the
  g and o blocks of the weights and bias on the way in and of their gradients on the way out.
- Sequences: CS231n is batch-first ``(N, T, ...)``, torch's rnn_tanh and lstm sequence-first
  ``(T, N, ...)``; CS231n returns every hidden state, torch also the last one (``h_n``), whose
  upstream gradient the adapter adds to the last step's. CS231n's h0 is required (zeros when
  the case has none) and its lstm starts from c0 = 0 (cases with a c0 are skipped).
- ``lstm_forward`` returns no final cell state c_n: the adapter replays the module's own
  ``lstm_step_forward`` along the hidden states lstm_forward returned to get it, and sends c_n's
  upstream gradient back through the module's ``lstm_step_backward``; the module needs both.
- ``svm_loss``: CS231n's loss is ``sum_n sum_{i != y_n} max(0, x[n, i] - x[n, y_n] + 1) / N``;
  torch's multi_margin_loss (p=1, margin=1, reduction='mean') divides the same sum by ``N * C``.
  The adapter divides CS231n's loss and dx by C (the number of classes), so a correct svm_loss
  matches torch exactly; every other p, margin, reduction or a class weight is skipped.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from ..specs import Unsupported
from .contract import LayerFunctions, user_name

__all__ = ["FORMS_BY_LAYER", "adapt_cs231n_seqloss"]

Array = np.ndarray


def _find(module: ModuleType, stem: str) -> tuple[Callable, Callable, str] | None:
    for suffix in ("_naive", ""):
        forward, backward = (getattr(module, f"{stem}_{way}{suffix}", None) for way in ("forward", "backward"))
        if callable(forward) and callable(backward):
            return forward, backward, f"cs231n: {stem}_forward{suffix}"
    return None


def _swap_g_o(array: Array) -> Array:
    """Exchange the 3rd and 4th gate blocks (first axis): torch's i, f, g, o <-> CS231n's i, f, o, g."""
    i, f, third, fourth = np.split(array, 4, axis=0)
    return np.concatenate([i, f, fourth, third], axis=0)


def _cs231n_weights(weight_ih, weight_hh, bias_ih, bias_hh, lstm: bool) -> tuple[Array, Array, Array]:
    order = _swap_g_o if lstm else (lambda a: a)
    bias = np.zeros(weight_hh.shape[0], dtype=weight_hh.dtype) if bias_ih is None else bias_ih + bias_hh
    return (np.ascontiguousarray(order(weight_ih).T), np.ascontiguousarray(order(weight_hh).T), order(bias))


def _torch_grads(d_wx, d_wh, db, has_bias: bool, lstm: bool) -> tuple[Any, Any, Any, Any]:
    order = _swap_g_o if lstm else (lambda a: a)
    grad_bias = order(np.asarray(db)) if has_bias else None
    return (order(np.asarray(d_wx).T), order(np.asarray(d_wh).T), grad_bias,
            None if grad_bias is None else grad_bias.copy())


def _rnn_cell(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def rnn_tanh_cell_forward(input, hx, weight_ih, weight_hh, bias_ih, bias_hh):
        h, cache = forward(input, hx, *_cs231n_weights(weight_ih, weight_hh, bias_ih, bias_hh, False))
        return h, (cache, bias_ih is not None)

    def rnn_tanh_cell_backward(dout, cache):
        dx, dh, d_wx, d_wh, db = backward(dout, cache[0])
        return (dx, dh, *_torch_grads(d_wx, d_wh, db, cache[1], False))

    return LayerFunctions("rnn_tanh_cell", rnn_tanh_cell_forward, rnn_tanh_cell_backward, frozenset(), origin=origin)


def _lstm_cell(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def lstm_cell_forward(input, hx, cx, weight_ih, weight_hh, bias_ih, bias_hh):
        h, c, cache = forward(input, hx, cx, *_cs231n_weights(weight_ih, weight_hh, bias_ih, bias_hh, True))
        return (h, c), (cache, bias_ih is not None)

    def lstm_cell_backward(douts, cache):
        dx, dh, dc, d_wx, d_wh, db = backward(douts[0], douts[1], cache[0])
        return (dx, dh, dc, *_torch_grads(d_wx, d_wh, db, cache[1], True))

    return LayerFunctions("lstm_cell", lstm_cell_forward, lstm_cell_backward, frozenset(), origin=origin)


def _batch_first(x: Array) -> Array:
    return np.ascontiguousarray(np.swapaxes(x, 0, 1))


def _rnn(forward: Callable, backward: Callable, origin: str) -> LayerFunctions:
    def rnn_tanh_forward(input, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        start = np.zeros((input.shape[1], weight_hh.shape[1]), dtype=input.dtype) if h0 is None else h0
        h, cache = forward(_batch_first(input), start, *_cs231n_weights(weight_ih, weight_hh, bias_ih, bias_hh, False))
        return (_batch_first(h), np.array(h[:, -1])), (cache, bias_ih is not None, h0 is not None)

    def rnn_tanh_backward(douts, cache):
        d_output, d_h_n = douts
        dh = np.array(np.swapaxes(d_output, 0, 1))  # a copy: the upstream gradient stays untouched
        dh[:, -1] += d_h_n  # h_n is the last hidden state
        dx, dh0, d_wx, d_wh, db = backward(dh, cache[0])
        return (_batch_first(dx), dh0 if cache[2] else None, *_torch_grads(d_wx, d_wh, db, cache[1], False))

    return LayerFunctions("rnn_tanh", rnn_tanh_forward, rnn_tanh_backward, frozenset(), origin=origin)


def _lstm(forward: Callable, backward: Callable, step: tuple[Callable, Callable] | None,
          origin: str) -> LayerFunctions:
    def lstm_forward(input, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
        if c0 is not None:
            raise Unsupported(f"{user_name(origin)} starts from c0 = 0; this case has a c0")
        if step is None:
            raise Unsupported(f"{user_name(origin)} returns no final cell state c_n: define lstm_step_forward "
                              "and lstm_step_backward too, and refcheck replays them for c_n")
        weights = _cs231n_weights(weight_ih, weight_hh, bias_ih, bias_hh, True)
        start = np.zeros((input.shape[1], weight_hh.shape[1]), dtype=input.dtype) if h0 is None else h0
        x = _batch_first(input)
        h, cache = forward(x, start, *weights)
        # c_n from the module's own step function, fed the hidden states lstm_forward returned.
        c, step_caches = np.zeros_like(start), []
        for t in range(x.shape[1]):
            _, c, step_cache = step[0](x[:, t], start if t == 0 else h[:, t - 1], c, *weights)
            step_caches.append(step_cache)
        return (_batch_first(h), np.array(h[:, -1]), c), (cache, step_caches, bias_ih is not None, h0 is not None)

    def lstm_backward(douts, cache):
        d_output, d_h_n, d_c_n = douts
        inner, step_caches, has_bias, has_h0 = cache
        dh = np.array(np.swapaxes(d_output, 0, 1))  # a copy: the upstream gradient stays untouched
        dh[:, -1] += d_h_n
        dx, dh0, d_wx, d_wh, db = (np.array(g) for g in backward(dh, inner))
        # c_n's upstream gradient, sent back through the module's step backward.
        d_next_h, d_next_c = np.zeros_like(d_c_n), d_c_n
        for t in reversed(range(len(step_caches))):
            step_dx, d_next_h, d_next_c, step_wx, step_wh, step_b = step[1](d_next_h, d_next_c, step_caches[t])
            dx[:, t] += step_dx
            d_wx, d_wh, db = d_wx + step_wx, d_wh + step_wh, db + step_b
        dh0 = dh0 + d_next_h
        return (_batch_first(dx), dh0 if has_h0 else None, None, *_torch_grads(d_wx, d_wh, db, has_bias, True))

    return LayerFunctions("lstm", lstm_forward, lstm_backward, frozenset(), origin=origin)


def _linear(temporal: tuple[Callable, Callable, str], affine: LayerFunctions | None) -> LayerFunctions:
    """temporal_affine for (N, T, D) inputs; the adapted affine_forward (if any) for 2-d ones."""
    forward, backward, origin = temporal

    def linear_forward(x, weight, bias):
        if x.ndim != 3:
            if affine is None:
                raise Unsupported(f"{user_name(origin)} takes (N, T, D) inputs; this case's is {x.shape}")
            out, inner = affine.forward(x, weight, bias)
            return out, ("affine", inner, bias is not None)
        zeros = np.zeros(weight.shape[0], dtype=weight.dtype)
        out, inner = forward(x, np.ascontiguousarray(weight.T), zeros if bias is None else bias)
        return out, ("temporal", inner, bias is not None)

    def linear_backward(dout, cache):
        kind, inner, has_bias = cache
        if kind == "affine":
            return affine.backward(dout, inner)
        dx, dw, db = backward(dout, inner)
        return dx, np.asarray(dw).T, db if has_bias else None

    return LayerFunctions("linear", linear_forward, linear_backward, frozenset(), origin=origin)


def _svm(loss_and_grad: Callable, origin: str) -> LayerFunctions:
    def multi_margin_loss_forward(input, target, weight=None, *, reduction="mean", p=1, margin=1.0):
        if weight is not None:
            raise Unsupported(f"{user_name(origin)} has no class weights")
        if input.ndim != 2:
            raise Unsupported(f"{user_name(origin)} takes (N, C) scores; this case's input is {input.shape}")
        loss, dx = loss_and_grad(input, target)
        classes = input.shape[1]
        # CS231n divides the summed margins by N, torch's mean by N * C: divide by C (exact).
        return loss / classes, (dx, classes)

    def multi_margin_loss_backward(dout, cache):
        dx, classes = cache
        return dx * (dout / classes)

    def constraint(hparams: Mapping[str, Any]) -> str | None:
        if (hparams.get("reduction", "mean"), hparams.get("p", 1), hparams.get("margin", 1.0)) != ("mean", 1, 1.0):
            return f"{user_name(origin)} is multi_margin_loss with p=1, margin=1 and reduction='mean' only"
        return None

    return LayerFunctions("multi_margin_loss", multi_margin_loss_forward, multi_margin_loss_backward,
                          accepted=frozenset({"reduction", "p", "margin"}), constraint=constraint, origin=origin)


# The adapters by contract layer, for functions a mapping names under names of their own: the
# number of positional arguments the user's forward takes, and (forward, backward or None, origin)
# -> LayerFunctions. svm_loss is its own backward; lstm needs the module's step functions too, so it
# is found by its CS231n names only.
FORMS_BY_LAYER: dict[str, tuple[int, Callable[[Callable, Callable | None, str], LayerFunctions]]] = {
    "rnn_tanh_cell": (5, _rnn_cell), "lstm_cell": (6, _lstm_cell), "rnn_tanh": (5, _rnn),
    "multi_margin_loss": (2, lambda forward, backward, origin: _svm(forward, origin)),
}


def adapt_cs231n_seqloss(module: ModuleType, affine: LayerFunctions | None = None) -> dict[str, LayerFunctions]:
    """Contract LayerFunctions for the CS231n recurrent, temporal affine and svm_loss functions in ``module``.

    ``affine``: the adapted ``affine_forward`` (2-d linear), used for 2-d inputs when the module also
    has ``temporal_affine_forward``.
    """
    adapted: dict[str, LayerFunctions] = {}
    builders = {"rnn_step": _rnn_cell, "lstm_step": _lstm_cell, "rnn": _rnn}
    for stem, build in builders.items():
        found = _find(module, stem)
        if found:
            functions = build(*found)
            adapted[functions.layer] = functions
    lstm = _find(module, "lstm")
    if lstm:
        step = _find(module, "lstm_step")
        adapted["lstm"] = _lstm(lstm[0], lstm[1], None if step is None else step[:2], lstm[2])
    temporal = _find(module, "temporal_affine")
    if temporal:
        adapted["linear"] = _linear(temporal, affine)
    if callable(getattr(module, "svm_loss", None)):
        adapted["multi_margin_loss"] = _svm(module.svm_loss, "cs231n: svm_loss")
    return adapted
