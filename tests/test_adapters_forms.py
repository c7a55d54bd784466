"""Pair-valued constructor arguments with an int default (``MaxPool2d(kernel_size, stride=None,
padding=0)``): such an argument is probed as one int first, and given (h, w) pairs when the code
also takes a pair whose axes differ (its shapes on such a probe case are torch's). Code that only
takes an int, or takes a pair but means something else by it, keeps the int form and its
non-square cases are left out as unsupported, never failed.
"""
from __future__ import annotations

from pathlib import Path

from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import check

POOL = '''
import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class MaxPool2d:
    def __init__(self, kernel_size, stride=None, padding=0):
        self.k = _pair(kernel_size)
        self.s = _pair(stride if stride is not None else kernel_size)
        self.p = _pair(padding)

    def forward(self, x):
        (kh, kw), (sh, sw), (ph, pw) = self.k, self.s, self.p
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        n, c, h, w = xp.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        self.argmax = np.empty((n, c, oh, ow), dtype=np.int64)
        for i in range(oh):
            for j in range(ow):
                window = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, c, -1)
                self.argmax[:, :, i, j] = window.argmax(axis=2)
                out[:, :, i, j] = window.max(axis=2)
        self.shape = x.shape
        return out

    def backward(self, dout):
        (kh, kw), (sh, sw), (ph, pw) = self.k, self.s, self.p
        n, c, h, w = self.shape
        dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
        ni, ci = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                a, b = np.divmod(self.argmax[:, :, i, j], kw)
                np.add.at(dxp, (ni, ci, i * sh + a, j * sw + b), dout[:, :, i, j])
        return dxp[:, :, ph:ph + h, pw:pw + w]
'''

# The same pool taking one int: a pair as its padding would be a TypeError in forward.
INT_ONLY = POOL.replace("self.p = _pair(padding)", "self.p = (padding + 0, padding + 0)")
# A pair accepted but only its first value used, for both axes: shapes differ from torch's.
PAIR_MEANS_ELSE = POOL.replace("self.p = _pair(padding)",
                               "self.p = (padding, padding) if isinstance(padding, int) else (padding[0], padding[0])")


def _load(tmp_path: Path, source: str):
    path = tmp_path / "pools.py"
    path.write_text(source, encoding="utf-8")
    return path, load_implementation(str(path)).layers["max_pool2d"]


def test_an_int_default_that_takes_pairs_gets_the_non_square_cases(tmp_path):
    path, functions = _load(tmp_path, POOL)
    assert functions.constraint is None or functions.constraint({"padding": (1, 0), "stride": (2, 1)}) is None
    frame = check(str(path), ["max_pool2d"], workers=0, selfcheck=False)
    assert set(frame["status"]) == {"passed"}
    assert (frame["padding"] == "(1, 0)").any() and (frame["kernel_size"] == "(3, 2)").any()


def test_code_that_takes_one_int_keeps_the_int_form(tmp_path):
    for source in (INT_ONLY, PAIR_MEANS_ELSE):
        path, functions = _load(tmp_path, source)
        reason = functions.constraint({"padding": (1, 0), "kernel_size": (2, 2), "stride": (2, 2)})
        assert reason is not None and "one int for padding" in reason
        frame = check(str(path), ["max_pool2d"], quick=True, workers=0, selfcheck=False)
        assert set(frame["status"]) <= {"passed", "skipped"} and (frame["status"] == "passed").any()
        assert not (frame.loc[frame["status"] == "passed", "padding"] == "(1, 0)").any()


CONV = '''
import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        kh, kw = _pair(kernel_size)
        self.s, self.padding = _pair(stride), padding
        self.weight = np.random.randn(out_channels, in_channels, kh, kw)
        self.bias = np.zeros(out_channels)

    def _pads(self, kh, kw):
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":                      # torch: the odd extra row/column at the end
            return ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
        ph, pw = _pair(self.padding)
        return (ph, ph), (pw, pw)

    def forward(self, x):
        (sh, sw) = self.s
        f, c, kh, kw = self.weight.shape
        self.pads = self._pads(kh, kw)
        self.xp = xp = np.pad(x, ((0, 0), (0, 0), *self.pads))
        n, _, h, w = xp.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        out = np.zeros((n, f, oh, ow), dtype=x.dtype)
        for i in range(oh):
            for j in range(ow):
                out[:, :, i, j] = np.einsum("nchw,fchw->nf", xp[:, :, i*sh:i*sh+kh, j*sw:j*sw+kw], self.weight)
        self.shape = x.shape
        return out + self.bias[None, :, None, None]

    def backward(self, dout):
        (sh, sw), ((top, _), (left, _)) = self.s, self.pads
        f, c, kh, kw = self.weight.shape
        dxp = np.zeros_like(self.xp)
        self.dW = np.zeros_like(self.weight)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                g = dout[:, :, i, j]
                self.dW += np.einsum("nf,nchw->fchw", g, self.xp[:, :, i*sh:i*sh+kh, j*sw:j*sw+kw])
                dxp[:, :, i*sh:i*sh+kh, j*sw:j*sw+kw] += np.einsum("nf,fchw->nchw", g, self.weight)
        self.db = dout.sum(axis=(0, 2, 3))
        n, c, h, w = self.shape
        return dxp[:, :, top:top + h, left:left + w]
'''
# The same conv without padding modes: _pair('same') would be a tuple of letters.
CONV_NO_MODES = CONV.replace('''        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":''', '''        if False:''')


def _statuses_for(path: Path, column: str, value: str) -> set[str]:
    frame = check(str(path), ["conv2d"], quick=True, workers=0, selfcheck=False)
    assert "error" not in set(frame["status"]) and "failed" not in set(frame["status"])
    return set(frame.loc[frame[column] == value, "status"])


def test_a_padding_taken_as_pairs_gets_the_padding_modes_only_if_the_code_takes_them(tmp_path):
    path = tmp_path / "modes.py"
    path.write_text(CONV, encoding="utf-8")
    assert _statuses_for(path, "padding", "'same'") == {"passed"}
    path = tmp_path / "no_modes.py"
    path.write_text(CONV_NO_MODES, encoding="utf-8")
    functions = load_implementation(str(path)).layers["conv2d"]
    assert "no padding mode" in functions.constraint({"padding": "same", "stride": (1, 1)})
    assert functions.constraint({"padding": (1, 0), "stride": (2, 1)}) is None
    assert _statuses_for(path, "padding", "(1, 0)") == {"passed"}


def test_the_description_names_only_values_fixed_for_arguments_the_code_lacks(tmp_path):
    """torch.nn's class default for a hyperparameter is fixed only where the class has no argument
    for it: a Flatten(start_dim=1, end_dim=-1) is not 'fixed start_dim=1', one without is."""
    path = tmp_path / "flat.py"
    path.write_text('''
class Flatten:
    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        self.shape = x.shape
        end = self.end_dim % x.ndim
        return x.reshape(*x.shape[:self.start_dim], -1, *x.shape[end + 1:])

    def backward(self, dout):
        return dout.reshape(self.shape)


class Flatten2:
    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.shape)
''', encoding="utf-8")
    assert "fixed" not in load_implementation(str(path)).layers["flatten"].description
    path.write_text(path.read_text(encoding="utf-8").replace("class Flatten:", "class Unused:").replace(
        "class Flatten2:", "class Flatten:"), encoding="utf-8")
    described = load_implementation(str(path)).layers["flatten"].description
    assert "fixed start_dim=1" in described
