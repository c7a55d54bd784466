"""Pooling backward mistakes learners make, each planted in a naive-loop max_pool2d/avg_pool2d:
the gradient of a tie sent to the last maximum, every window's gradient sent to its first
element, the average pool's gradient (or sum) not divided by the window size. Each is diagnosed
on its own rows, and the correct pools pass (torch is the oracle)."""
from __future__ import annotations

import pytest

from refcheck.execution.sweep import check

POOLS = '''
import numpy as np


def _windows(x, kernel_size, stride, padding, fill):
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    return xp, oh, ow


def max_pool2d_forward(x, *, kernel_size, stride, padding):
    (kh, kw), (sh, sw) = kernel_size, stride
    xp, oh, ow = _windows(x, kernel_size, stride, padding, -np.inf)
    out = np.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
    where = np.empty(x.shape[:2] + (oh, ow), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(x.shape[:2] + (-1,))
            out[:, :, i, j] = window.max(axis=-1)
            where[:, :, i, j] = MAX_CHOICE
    return out, (x.shape, xp.shape, where, kernel_size, stride, padding)


def max_pool2d_backward(dout, cache):
    shape, padded, where, (kh, kw), (sh, sw), (ph, pw) = cache
    dxp = np.zeros(padded, dtype=dout.dtype)
    n, c = np.indices(shape[:2])
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            di, dj = np.divmod(where[:, :, i, j], kw)
            np.add.at(dxp, (n, c, i * sh + di, j * sw + dj), dout[:, :, i, j])
    return dxp[:, :, ph:ph + shape[2], pw:pw + shape[3]]


def avg_pool2d_forward(x, *, kernel_size, stride, padding):
    (kh, kw), (sh, sw) = kernel_size, stride
    xp, oh, ow = _windows(x, kernel_size, stride, padding, 0.0)
    out = np.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].sum(axis=(2, 3)) / FORWARD_DIVISOR
    return out, (x.shape, xp.shape, kernel_size, stride, padding)


def avg_pool2d_backward(dout, cache):
    shape, padded, (kh, kw), (sh, sw), (ph, pw) = cache
    dxp = np.zeros(padded, dtype=dout.dtype)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dxp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += dout[:, :, i, j][:, :, None, None] / BACKWARD_DIVISOR
    return dxp[:, :, ph:ph + shape[2], pw:pw + shape[3]]
'''

RIGHT = {"MAX_CHOICE": "window.argmax(axis=-1)", "FORWARD_DIVISOR": "(kh * kw)", "BACKWARD_DIVISOR": "(kh * kw)"}


def _checked(tmp_path, layer, **planted):
    source = POOLS
    for name, value in {**RIGHT, **planted}.items():
        source = source.replace(name, value)
    path = tmp_path / "pools.py"
    path.write_text(source)
    return check(str(path), [layer], workers=1, selfcheck=False)


def test_the_correct_pools_pass(tmp_path):
    for layer in ("max_pool2d", "avg_pool2d"):
        frame = _checked(tmp_path, layer)
        ran = frame[frame["status"] != "skipped"]
        assert len(ran) and set(ran["status"]) == {"passed"}, layer


@pytest.mark.parametrize("layer, planted, diagnosis", [
    ("max_pool2d", {"MAX_CHOICE": "window.shape[-1] - 1 - window[..., ::-1].argmax(axis=-1)"},
     "ties sent to the last maximum"),
    ("max_pool2d", {"MAX_CHOICE": "np.zeros(window.shape[:-1], dtype=np.int64)"},
     "gradient sent to each window's first element"),
    ("avg_pool2d", {"BACKWARD_DIVISOR": "1"}, "gradient not divided by the window size"),
    ("avg_pool2d", {"FORWARD_DIVISOR": "1", "BACKWARD_DIVISOR": "1"}, "not divided by the window size"),
], ids=["last-tie", "first-element", "backward-undivided", "sum-undivided"])
def test_a_planted_routing_or_division_mistake_is_diagnosed(tmp_path, layer, planted, diagnosis):
    frame = _checked(tmp_path, layer, **planted)
    failed = frame[frame["status"] == "failed"]
    assert len(failed)
    said = failed["diagnosis"].fillna("")
    # Told wherever it is the cause: a failing gradient on inputs without ties is no tie mistake.
    assert said.str.contains(diagnosis, regex=False).mean() > 0.5, failed[["case", "tensor", "diagnosis"]]
