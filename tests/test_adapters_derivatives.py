"""Activations written with their derivative: sigmoid(z) and sigmoid_prime(z), the derivative of the
output (s * (1 - s)), a deriv=True flag, deeplearning.ai's relu(Z) -> (A, cache) with
relu_backward(dA, cache), numpy-ml's classes with fn and grad. Such code was found as no layer at
all (or a class with no backward, every case an error); torch is the oracle of every case here."""
from __future__ import annotations

import pytest

from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import check

NIELSEN = '''
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


def relu(x):
    return np.maximum(x, 0)


def relu_derivative(x):
    return (x > 0).astype(x.dtype)


def leaky_relu(x, alpha=0.01):
    return np.where(x > 0, x, alpha * x)


def d_leaky_relu(x, alpha=0.01):
    return np.where(x > 0, 1.0, alpha).astype(x.dtype)
'''

OF_THE_OUTPUT = '''
import numpy as np


def tanh(x, deriv=False):
    if deriv:
        return 1 - x ** 2
    return np.tanh(x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_derivative(s):
    return s * (1 - s)
'''

COURSE = '''
import numpy as np


def relu(Z):
    return np.maximum(0, Z), Z


def relu_backward(dA, cache):
    dZ = np.array(dA, copy=True)
    dZ[cache <= 0] = 0
    return dZ
'''

NUMPY_ML = '''
import numpy as np


class Tanh:
    def __call__(self, z):
        return self.fn(z)

    def fn(self, z):
        return np.tanh(z)

    def grad(self, x):
        return 1 - np.tanh(x) ** 2


class LeakyReLU:
    def __init__(self, alpha=0.3):
        self.alpha = alpha

    def fn(self, z):
        return np.where(z > 0, z, z * self.alpha)

    def grad(self, x):
        return np.where(x > 0, 1.0, self.alpha).astype(x.dtype)
'''


def _checked(tmp_path, source: str, layers: list[str]):
    path = tmp_path / "activations.py"
    path.write_text(source)
    frame = check(str(path), layers, quick=True, workers=1, selfcheck=False)
    assert set(frame["layer"]) == set(layers)
    return frame


@pytest.mark.parametrize("source, layers", [
    (NIELSEN, ["sigmoid", "relu", "leaky_relu"]),
    (OF_THE_OUTPUT, ["tanh", "sigmoid"]),
    (COURSE, ["relu"]),
    (NUMPY_ML, ["tanh", "leaky_relu"]),
], ids=["function-and-prime", "of-the-output", "course-backward", "class-fn-grad"])
def test_correct_activations_written_with_derivatives_pass_against_torch(tmp_path, source, layers):
    frame = _checked(tmp_path, source, layers)
    assert set(frame["status"]) == {"passed"}, frame.loc[frame["status"] != "passed", ["case", "reason"]].to_string()
    assert frame["implementation"].str.contains("adapter derivative").all()


def test_the_convention_checked_is_said_in_the_user_s_names(tmp_path):
    path = tmp_path / "activations.py"
    path.write_text(OF_THE_OUTPUT)
    layers = load_implementation(str(path)).layers
    assert layers["sigmoid"].origin == "derivative: sigmoid with sigmoid_derivative (of the output)"
    assert layers["tanh"].origin == "derivative: tanh with tanh(deriv=True) (of the output)"


def test_a_derivative_that_is_wrong_both_ways_fails_on_the_input_gradient_only(tmp_path):
    # The product rule cut short: s instead of s * (1 - s).
    frame = _checked(tmp_path, NIELSEN.replace("return sigmoid(z) * (1 - sigmoid(z))", "return sigmoid(z)"),
                     ["sigmoid"])
    assert set(frame.loc[frame["tensor"] == "output", "status"]) == {"passed"}
    assert set(frame.loc[frame["tensor"] == "grad_input", "status"]) == {"failed"}


def test_a_derivative_that_ignores_the_slope_fails_where_the_slope_is_not_its_default(tmp_path):
    frame = _checked(tmp_path, NIELSEN.replace("def d_leaky_relu(x, alpha=0.01):\n    return np.where(x > 0, 1.0, alpha)",
                                               "def d_leaky_relu(x):\n    return np.where(x > 0, 1.0, 0.01)"),
                     ["leaky_relu"])
    gradients = frame[frame["tensor"] == "grad_input"]
    default = gradients["case"].str.contains("ns0.01-")
    assert set(gradients.loc[default, "status"]) == {"passed"}
    assert set(gradients.loc[~default, "status"]) == {"failed"}


def test_a_class_s_grad_with_a_mistake_fails(tmp_path):
    frame = _checked(tmp_path, NUMPY_ML.replace("return 1 - np.tanh(x) ** 2", "return 1 - x ** 3"), ["tanh"])
    assert set(frame.loc[frame["tensor"] == "grad_input", "status"]) == {"failed"}
