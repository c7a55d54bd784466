"""deeplearning.ai-style functions (channels last, W (f, f, n_C_prev, n_C), b (1, 1, 1, n_C),
hparameters dicts, pool_forward(..., mode)) are found by their names and checked in the course's
own conventions: correct code passes, a planted mistake fails on its tensor, and what the course's
functions cannot express (non-square kernels or strides, pooling padding) is left out, named."""
from __future__ import annotations

from pathlib import Path

import pytest

from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import check

COURSE = '''
import numpy as np


def zero_pad(X, pad):
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=(0, 0))


def conv_forward(A_prev, W, b, hparameters):
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, f, n_C_prev, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = int((n_H_prev - f + 2 * pad) / stride) + 1
    n_W = int((n_W_prev - f + 2 * pad) / stride) + 1
    Z = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    A_prev_pad = zero_pad(A_prev, pad)
    for h in range(n_H):
        for w in range(n_W):
            window = A_prev_pad[:, h * stride:h * stride + f, w * stride:w * stride + f, :]
            Z[:, h, w, :] = np.tensordot(window, W, axes=([1, 2, 3], [0, 1, 2])) + b[0, 0, 0, :]
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    f = W.shape[0]
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_H, n_W, n_C = dZ.shape
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = np.zeros_like(A_prev_pad)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    for h in range(n_H):
        for w in range(n_W):
            window = A_prev_pad[:, h * stride:h * stride + f, w * stride:w * stride + f, :]
            dA_prev_pad[:, h * stride:h * stride + f, w * stride:w * stride + f, :] += np.tensordot(
                dZ[:, h, w, :], W, axes=([1], [3]))
            dW += np.tensordot(window, dZ[:, h, w, :], axes=([0], [0]))
    db[0, 0, 0, :] = dZ.sum(axis=(0, 1, 2))
    dA_prev = dA_prev_pad[:, pad:pad + A_prev.shape[1], pad:pad + A_prev.shape[2], :]
    return dA_prev, dW, db


def pool_forward(A_prev, hparameters, mode="max"):
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H, n_W = int(1 + (n_H_prev - f) / stride), int(1 + (n_W_prev - f) / stride)
    A = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    for h in range(n_H):
        for w in range(n_W):
            window = A_prev[:, h * stride:h * stride + f, w * stride:w * stride + f, :]
            A[:, h, w, :] = window.max(axis=(1, 2)) if mode == "max" else window.mean(axis=(1, 2))
    return A, (A_prev, hparameters)


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    dA_prev = np.zeros_like(A_prev)
    m, n_H, n_W, n_C = dA.shape
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    rows, cols = slice(h * stride, h * stride + f), slice(w * stride, w * stride + f)
                    if mode == "max":
                        window = A_prev[i, rows, cols, c]
                        first = np.unravel_index(np.argmax(window), window.shape)
                        dA_prev[i, rows, cols, c][first] += dA[i, h, w, c]
                    else:
                        dA_prev[i, rows, cols, c] += dA[i, h, w, c] / (f * f)
    return dA_prev
'''


def _module(tmp_path: Path, source: str = COURSE) -> Path:
    path = tmp_path / "cnn_utils.py"
    path.write_text(source, encoding="utf-8")
    return path


def test_the_course_s_functions_are_found_in_the_course_s_layout(tmp_path):
    layers = load_implementation(str(_module(tmp_path))).layers
    for layer in ("conv2d", "max_pool2d", "avg_pool2d"):
        assert layers[layer].adapter == "coursera" and layers[layer].layout.startswith("NHWC"), layer
    assert "(kh, kw, C, F)" in layers["conv2d"].layout


def test_correct_course_functions_pass_what_they_can_express(tmp_path):
    frame = check(str(_module(tmp_path)), ["conv2d", "max_pool2d", "avg_pool2d"], quick=True, workers=0,
                  selfcheck=False)
    assert set(frame["status"]) == {"passed"} and set(frame["layer"]) == {"conv2d", "max_pool2d", "avg_pool2d"}
    assert frame.loc[frame["layer"] == "conv2d", "case"].str.contains("nobias").any()  # a zero b for no bias
    from refcheck.execution.sweep import plan_sweep

    plan = plan_sweep(str(_module(tmp_path)), ["conv2d", "max_pool2d"])
    assert "one f for both kernel axes" in plan.unsupported["conv2d"]
    assert "no padding" in plan.unsupported["max_pool2d"]


@pytest.mark.parametrize("old, new, tensor", [
    ("db[0, 0, 0, :] = dZ.sum(axis=(0, 1, 2))", "db[0, 0, 0, :] = dZ.sum(axis=(0, 1, 2)) / m", "grad_bias"),
    ("dW += np.tensordot(window, dZ[:, h, w, :], axes=([0], [0]))",
     "dW += 2 * np.tensordot(window, dZ[:, h, w, :], axes=([0], [0]))", "grad_weight"),
])
def test_a_planted_mistake_fails_on_its_tensor(tmp_path, old, new, tensor):
    assert old in COURSE
    frame = check(str(_module(tmp_path, COURSE.replace(old, new))), ["conv2d"], quick=True, workers=0,
                  selfcheck=False)
    assert (frame.loc[frame["tensor"] == tensor, "status"] == "failed").any()
    assert set(frame.loc[frame["tensor"] == "output", "status"]) == {"passed"}


def test_course_code_that_raises_on_every_probe_is_checked_in_the_course_s_layout(tmp_path):
    # The course's own `Z + float(b)` raises under numpy 2 (b is (1, 1, 1)): it fits no layout,
    # and its cases showed the CS231n call's IndexError (NCHW arrays into channels-last code)
    # instead of its own TypeError.
    as_scalar = ("\n\ndef as_scalar(b):  # numpy 2's float() of a (1, 1, 1) array\n    if np.ndim(b):\n"
                 "        raise TypeError('only 0-dimensional arrays can be converted to Python scalars')\n"
                 "    return float(b)\n")
    broken = COURSE.replace("+ b[0, 0, 0, :]", "+ as_scalar(b)") + as_scalar
    path = _module(tmp_path, broken)
    conv = load_implementation(str(path)).layers["conv2d"]
    assert conv.adapter == "coursera" and conv.layout.startswith("NHWC")
    frame = check(str(path), ["conv2d"], quick=True, workers=0, selfcheck=False)
    errors = frame[frame["status"] == "error"]
    assert len(errors) and errors["reason"].str.contains("TypeError").all()
