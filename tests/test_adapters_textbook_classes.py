"""Classes written as the Deep Learning from Scratch book writes them: Dropout(dropout_ratio),
BatchNormalization(gamma, beta, momentum, running_mean, running_var) with forward(x, train_flg),
eps hard-coded. The drop probability reaches the object under its own name, the parameters reach
a constructor that takes them, a value the code cannot take is left out (not compared against a
value it never used), and a mapping that names such a class is applied instead of crashing.
"""
from __future__ import annotations

from pathlib import Path

from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import check

BOOK = '''
import numpy as np


class Dropout:
    def __init__(self, dropout_ratio=0.5):
        self.dropout_ratio = dropout_ratio
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            self.scale = 0.0 if self.dropout_ratio >= 1 else 1.0 / (1.0 - self.dropout_ratio)
        else:
            self.mask, self.scale = np.ones(x.shape, dtype=bool), 1.0
        return (x * self.mask * self.scale).astype(x.dtype)

    def backward(self, dout):
        return (dout * self.mask * self.scale).astype(dout.dtype)


class BatchNormalization:
    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        self.gamma, self.beta, self.momentum = gamma, beta, momentum
        self.running_mean, self.running_var = running_mean, running_var

    def forward(self, x, train_flg=True):
        if train_flg:
            mu, var = x.mean(axis=0), x.var(axis=0)
            self.xc, self.std = x - mu, np.sqrt(var + 1e-5)
            self.xn, self.n = self.xc / self.std, x.shape[0]
            if self.running_mean is not None:
                self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
                self.running_var = (self.momentum * self.running_var
                                    + (1 - self.momentum) * var * self.n / (self.n - 1))
        else:
            self.xn = (x - self.running_mean) / np.sqrt(self.running_var + 1e-5)
        return self.gamma * self.xn + self.beta

    def backward(self, dout):
        self.dbeta = dout.sum(axis=0)
        self.dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        return (dxn - dxn.mean(axis=0) - self.xn * (dxn * self.xn).mean(axis=0)) / self.std
'''


def _module(tmp_path: Path, source: str = BOOK) -> Path:
    path = tmp_path / "book.py"
    path.write_text(source, encoding="utf-8")
    return path


def test_a_dropout_ratio_argument_gets_the_case_s_drop_probability(tmp_path):
    frame = check(str(_module(tmp_path)), ["dropout"], workers=0, selfcheck=False)
    training = frame[frame["training"].astype(str) == "True"]
    assert set(training["status"]) == {"passed"} and (training["p"].astype(float) != 0.5).any()


def test_a_dropout_without_any_drop_probability_is_skipped_not_guessed(tmp_path):
    source = BOOK.replace("def __init__(self, dropout_ratio=0.5):\n        self.dropout_ratio = dropout_ratio",
                          "def __init__(self):\n        self.fixed = 0.5").replace("self.dropout_ratio", "self.fixed")
    frame = check(str(_module(tmp_path, source)), ["dropout"], workers=0, selfcheck=False)
    training = frame[(frame["training"].astype(str) == "True") & (frame["p"].astype(float) != 0)]
    assert set(training["status"]) == {"skipped"}
    assert training["reason"].str.contains("takes no drop probability").all()


def test_a_batchnorm_built_from_its_parameters_with_eps_of_its_own(tmp_path):
    frame = check(str(_module(tmp_path)), ["batch_norm"], workers=0, selfcheck=False)
    two_d = frame[(frame["input_shape"].str.count(",") == 1) & (frame["training"].astype(str) == "True")]
    ran = two_d[two_d["status"] != "skipped"]
    statistics = ran["tensor"].str.startswith("new_running_")
    assert len(ran) and set(ran.loc[~statistics, "status"]) == {"passed"}  # built with gamma and beta
    assert (ran["eps"].astype(float) == 1e-5).all()                         # the only eps it can be given
    # The book's momentum is the old value's weight, torch's the new one's: a finding, named.
    moved = ran[statistics & (ran["status"] == "failed")]
    assert len(moved) and moved["diagnosis"].str.startswith("momentum taken as the weight of the old value").all()
    skipped = frame[frame["status"] == "skipped"]
    assert skipped["reason"].str.contains("takes no eps").any()


def test_a_mapping_naming_such_a_class_is_applied(tmp_path):
    path = _module(tmp_path, BOOK.replace("class BatchNormalization:", "class BNLayer:"))
    (tmp_path / "refcheck.toml").write_text('[batch_norm]\nclass = "BNLayer"\n', encoding="utf-8")
    functions = load_implementation(str(path)).layers["batch_norm"]
    assert functions.adapter == "mapping" and functions.origin == "object: BNLayer"
    frame = check(str(path), ["batch_norm"], quick=True, workers=0, selfcheck=False)
    assert (frame["status"] == "passed").any()


AFFINE = '''
import numpy as np


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)        # every axis after the first flattened
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout):
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return np.dot(dout, self.W.T).reshape(*self.original_x_shape)
'''


def test_an_affine_that_flattens_its_input_gets_only_flat_inputs(tmp_path):
    """torch's linear keeps the leading axes of (N, *, in); the book's Affine flattens them: its
    cases with leading axes are left out, named, not errors in its code."""
    path = _module(tmp_path, AFFINE)
    frame = check(str(path), ["linear"], workers=0, selfcheck=False)
    assert set(frame["status"]) == {"passed"} and (frame["input_shape"].str.count(",") == 1).all()
    from refcheck.execution.sweep import plan_sweep

    assert "Affine takes (N, in_features) inputs only" in plan_sweep(str(path), ["linear"]).unsupported["linear"]
