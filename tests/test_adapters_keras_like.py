"""Keras-like classes: a base Layer whose __call__ runs the subclass's call(), and constructors
that hand **kwargs on to a base taking only its own (name, dtype). Such classes were taken as
having no forward (found and 'not used' at once, every case an AttributeError), or failed to be
built (TypeError: unexpected keyword argument 'in_features')."""
from __future__ import annotations

from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import check

KERAS_LIKE = '''
import numpy as np


class Layer:
    def __init__(self, name=None, dtype="float64"):
        self.name, self.dtype = name, dtype

    def __call__(self, inputs):
        return self.call(inputs)


class ReLU(Layer):
    def call(self, inputs):
        self.inputs = inputs
        return np.maximum(inputs, 0)

    def backward(self, grad):
        return grad * (self.inputs > 0)


class Linear(Layer):
    def __init__(self, in_features, out_features, **kwargs):
        super().__init__(**kwargs)
        self.weight = np.zeros((out_features, in_features))
        self.bias = np.zeros(out_features)

    def call(self, inputs):
        self.inputs = inputs
        return inputs @ self.weight.T + self.bias

    def backward(self, grad):
        rows, grads = self.inputs.reshape(-1, self.inputs.shape[-1]), grad.reshape(-1, grad.shape[-1])
        self.grad_weight = grads.T @ rows
        self.grad_bias = grads.sum(axis=0)
        return grad @ self.weight
'''


def test_a_keras_like_base_s_call_is_the_forward_and_its_kwargs_need_not_take_torch_s_names(tmp_path):
    path = tmp_path / "keras_like.py"
    path.write_text(KERAS_LIKE, encoding="utf-8")
    implementation = load_implementation(str(path))
    assert {"relu", "linear"} <= set(implementation.layers)
    frame = check(str(path), ["relu", "linear"], quick=True, workers=0, selfcheck=False)
    ran = frame[frame["status"] != "skipped"]
    assert set(ran["layer"]) == {"relu", "linear"}
    assert set(ran["status"]) == {"passed"}, ran.loc[ran["status"] != "passed", ["case", "reason"]].to_string()
