"""Real from-scratch code plugs in as it is: each style below is written the way learners and small
libraries write it, loaded by path, and checked against torch with the right verdicts; a bug
planted in each is found through its adapter."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import refcheck
from refcheck.cli import main
from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import plan_sweep

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write(folder: Path, name: str, code: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


def statuses(frame, tensor=None):
    rows = frame if tensor is None else frame[frame["tensor"] == tensor]
    return set(rows["status"])


# --- a package with relative imports -------------------------------------------------------------

UTIL = """
import numpy as np

def pad_images(x, pad):
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
"""

CONV_IN_PACKAGE = """
import numpy as np
from ..util import pad_images


def conv_forward_naive(x, w, b, conv_param):
    s, pad = conv_param["stride"], conv_param["pad"]
    xp = pad_images(x, pad)
    n, c, h, wd = xp.shape
    f, _, kh, kw = w.shape
    oh, ow = (h - kh) // s + 1, (wd - kw) // s + 1
    out = np.zeros((n, f, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * s:i * s + kh, j * s:j * s + kw]
            out[:, :, i, j] = np.einsum("nchw,fchw->nf", patch, w)
    return out + b[None, :, None, None], (x, xp, w, conv_param)


def conv_backward_naive(dout, cache):
    x, xp, w, conv_param = cache
    s, pad = conv_param["stride"], conv_param["pad"]
    f, _, kh, kw = w.shape
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            patch = xp[:, :, i * s:i * s + kh, j * s:j * s + kw]
            dw += np.einsum("nf,nchw->fchw", dout[:, :, i, j], patch)
            dxp[:, :, i * s:i * s + kh, j * s:j * s + kw] += np.einsum("nf,fchw->nchw", dout[:, :, i, j], w)
    dx = dxp[:, :, CROP_H, CROP_W]
    return dx, dw, dout.sum(axis=(0, 2, 3))
"""


def make_package(tmp_path: Path, crop: str) -> Path:
    crop_h, crop_w = (crop, crop) if crop == "1:-1" else ("pad:pad + x.shape[2]", "pad:pad + x.shape[3]")
    write(tmp_path, "proj/mynet/__init__.py", "")
    write(tmp_path, "proj/mynet/util.py", UTIL)
    write(tmp_path, "proj/mynet/layers/__init__.py", "")
    return write(tmp_path, "proj/mynet/layers/conv.py",
                 CONV_IN_PACKAGE.replace("CROP_H", crop_h).replace("CROP_W", crop_w))


def test_a_file_inside_a_package_with_relative_imports_loads_and_passes(tmp_path):
    path = make_package(tmp_path, "")
    implementation = load_implementation(str(path))
    assert implementation.layers["conv2d"].origin == "cs231n: conv_forward_naive"
    frame = refcheck.check(str(path), ["conv2d"], quick=True, workers=0, selfcheck=False)
    assert statuses(frame) == {"passed"}
    # The package folder works too: its modules are searched.
    assert "conv2d" in load_implementation(str(tmp_path / "proj" / "mynet")).layers


def test_a_bug_in_the_packaged_conv_is_found(tmp_path):
    path = make_package(tmp_path, "1:-1")  # right only at padding 1
    frame = refcheck.check(str(path), ["conv2d"], quick=True, workers=0, selfcheck=False)
    assert statuses(frame, "output") == {"passed"}
    grad_input = frame[frame["tensor"] == "grad_input"]
    # dx[:, :, 1:-1, 1:-1] is right only where the forward padded one pixel per side.
    passed = grad_input[grad_input["status"] == "passed"]
    assert len(passed) and set(passed["padding"]) <= {"(1, 1)", "'same'"}
    failed = grad_input[grad_input["status"] == "failed"]
    assert {"(0, 0)", "(2, 2)"} <= set(failed["padding"])
    assert failed["reason"].str.contains("grad_input shape").all()


# --- textbook classes: positional weights, pooling with pool_h/pool_w, SoftmaxWithLoss --------------

TEXTBOOK = """
import numpy as np


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0) * BIAS_SCALE
        return dout @ self.W.T


class Relu:
    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout = dout.copy()
        dout[self.mask] = 0
        return dout


class Pooling:
    def __init__(self, pool_h, pool_w, stride=1, pad=0):
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    def forward(self, x):
        n, c, h, w = x.shape
        s = self.stride
        oh, ow = (h - self.pool_h) // s + 1, (w - self.pool_w) // s + 1
        windows = np.stack([x[:, :, i * s:i * s + self.pool_h, j * s:j * s + self.pool_w].reshape(n, c, -1)
                            for i in range(oh) for j in range(ow)], axis=2)
        self.x, self.arg, self.oh, self.ow = x, windows.argmax(axis=-1), oh, ow
        return windows.max(axis=-1).reshape(n, c, oh, ow)

    def backward(self, dout):
        dx = np.zeros_like(self.x)
        s = self.stride
        n, c = dout.shape[:2]
        for k in range(self.oh * self.ow):
            i, j = divmod(k, self.ow)
            di, dj = np.divmod(self.arg[:, :, k], self.pool_w)
            for a in range(n):
                for b in range(c):
                    dx[a, b, i * s + di[a, b], j * s + dj[a, b]] += dout[a, b, i, j]
        return dx
"""


def test_textbook_classes_are_found_by_family_and_built_from_their_constructors(tmp_path):
    path = write(tmp_path, "textbook.py", TEXTBOOK.replace("BIAS_SCALE", "1"))
    implementation = load_implementation(str(path))
    assert set(implementation.layers) == {"linear", "relu", "max_pool2d"}
    linear = implementation.layers["linear"]
    assert linear.origin == "object: Affine" and "(in, out)" in linear.layout
    assert implementation.layers["max_pool2d"].accepted == {"kernel_size", "stride", "padding"}
    frame = refcheck.check(str(path), ["linear", "relu", "max_pool2d"], quick=True, workers=0, selfcheck=False)
    assert statuses(frame[frame["layer"] == "relu"]) == {"passed"}
    linear = frame[frame["layer"] == "linear"]
    two_d = linear["input_shape"].str.count(",") == 1
    assert statuses(linear[two_d]) == {"passed"}
    # This Affine keeps x.T @ dout: inputs with leading axes are its own limit, shown as errors.
    assert statuses(linear[~two_d], "grad_weight") == {"error"}
    # Pooling ignores its pad argument: the padded cases fail, the others pass.
    pool = frame[frame["layer"] == "max_pool2d"]
    padded = pool["padding"] != "(0, 0)"
    assert set(pool[~padded]["status"]) == {"passed"} and "failed" in set(pool[padded]["status"])


def test_a_bias_gradient_bug_in_a_positional_weight_class_is_found(tmp_path):
    path = write(tmp_path, "textbook.py", TEXTBOOK.replace("BIAS_SCALE", "0.5"))
    frame = refcheck.check(str(path), ["linear"], quick=True, workers=0, selfcheck=False)
    frame = frame[frame["input_shape"].str.count(",") == 1]
    assert statuses(frame, "grad_bias") == {"failed"}
    assert statuses(frame, "grad_weight") == {"passed"} and statuses(frame, "output") == {"passed"}


# --- a dense layer that applies SGD in backward, weights (in, out) ----------------------------------

SGD_DENSE = """
import numpy as np


class Dense:
    def __init__(self, n_inputs, n_neurons):
        self.weights = np.random.randn(n_inputs, n_neurons) * 0.01
        self.biases = np.zeros((1, n_neurons))

    def forward(self, inputs):
        self.inputs = inputs
        return inputs @ self.weights + self.biases

    def backward(self, grad, learning_rate):
        grad_inputs = grad @ self.weights.T
        self.weights = self.weights - learning_rate * (self.inputs.T @ grad) * WEIGHT_SCALE
        self.biases = self.biases - learning_rate * grad.sum(axis=0, keepdims=True)
        return grad_inputs
"""


def test_sgd_in_backward_gradients_are_recovered_from_the_update(tmp_path):
    path = write(tmp_path, "sgd.py", SGD_DENSE.replace("WEIGHT_SCALE", "1"))
    implementation = load_implementation(str(path))
    assert "(in, out)" in implementation.layers["linear"].layout
    frame = refcheck.check(str(path), ["linear"], quick=True, workers=0, selfcheck=False)
    frame = frame[frame["input_shape"].str.count(",") == 1]  # its x.T @ grad takes 2-d inputs only
    assert statuses(frame) == {"passed"}
    assert any("recovered" in note for note in implementation.layers["linear"].notes)


def test_a_weight_gradient_bug_behind_an_sgd_step_is_found(tmp_path):
    path = write(tmp_path, "sgd.py", SGD_DENSE.replace("WEIGHT_SCALE", "2"))
    frame = refcheck.check(str(path), ["linear"], quick=True, workers=0, selfcheck=False)
    frame = frame[frame["input_shape"].str.count(",") == 1]
    assert statuses(frame, "grad_weight") == {"failed"}
    assert statuses(frame, "grad_input") == {"passed"}


# --- NHWC with (kh, kw, C, F) kernels, parameters and gradients in dicts, lazy initialisation --------

# The forward of both NHWC classes below: a loop over output positions.
_NHWC_FORWARD_LOOP = """        W, b, s = self.parameters["W"], self.parameters["b"], self.stride
        fr, fc = W.shape[:2]
        n, h, w, c = X.shape
        oh, ow = (h - fr) // s + 1, (w - fc) // s + 1
        out = np.zeros((n, oh, ow, W.shape[3]), dtype=X.dtype)
        for i in range(oh):
            for j in range(ow):
                out[:, i, j, :] = np.einsum("nhwc,hwcf->nf", X[:, i * s:i * s + fr, j * s:j * s + fc, :], W)
"""

NHWC_CONV = """
import numpy as np


class Conv2D:
    def __init__(self, out_ch, kernel_shape, stride=1):
        self.out_ch, self.kernel_shape, self.stride = out_ch, kernel_shape, stride
        self.parameters = {"W": None, "b": None}
        self.gradients = {}

    def forward(self, X):
        if self.parameters["W"] is None:
            fr, fc = self.kernel_shape
            self.parameters = {"W": np.random.randn(fr, fc, X.shape[3], self.out_ch), "b": np.zeros(self.out_ch)}
NHWC_FORWARD_LOOP
        self.X = X
        return out + b

    def backward(self, dLdy):
        W, s, X = self.parameters["W"], self.stride, self.X
        fr, fc = W.shape[:2]
        dX, dW = np.zeros_like(X), np.zeros_like(W)
        for i in range(dLdy.shape[1]):
            for j in range(dLdy.shape[2]):
                patch = X[:, i * s:i * s + fr, j * s:j * s + fc, :]
                dW += np.einsum("nhwc,nf->hwcf", patch, dLdy[:, i, j, :])
                dX[:, i * s:i * s + fr, j * s:j * s + fc, :] += np.einsum("hwcf,nf->nhwc", W, dLdy[:, i, j, :])
        self.gradients = {"W": dW * W_SCALE, "b": dLdy.sum(axis=(0, 1, 2))}
        return dX
""".replace("NHWC_FORWARD_LOOP\n", _NHWC_FORWARD_LOOP)


def test_nhwc_conv_with_kh_kw_c_f_kernels_is_detected_and_passes(tmp_path):
    path = write(tmp_path, "nhwc.py", NHWC_CONV.replace("W_SCALE", "1"))
    conv = load_implementation(str(path)).layers["conv2d"]
    assert conv.layout == "NHWC, weight (kh, kw, C, F)"
    assert conv.accepted == {"stride"}
    frame = refcheck.check(str(path), ["conv2d"], quick=True, workers=0, selfcheck=False)
    assert statuses(frame) == {"passed"}
    assert frame["implementation"].str.contains("NHWC").all()


def test_a_bug_in_the_nhwc_conv_is_found_in_the_torch_layout(tmp_path):
    path = write(tmp_path, "nhwc.py", NHWC_CONV.replace("W_SCALE", "0.5"))
    frame = refcheck.check(str(path), ["conv2d"], quick=True, workers=0, selfcheck=False)
    assert statuses(frame, "grad_weight") == {"failed"}
    assert statuses(frame, "grad_input") == {"passed"} and statuses(frame, "output") == {"passed"}


RECORDING_CONV = """
import numpy as np


class Conv2D:
    # numpy-ml's style: parameters built on the first forward, each forward's input and
    # pre-activation appended to lists that backward walks.

    def __init__(self, out_ch, kernel_shape, stride=1):
        self.out_ch, self.kernel_shape, self.stride = out_ch, kernel_shape, stride
        self.parameters = {"W": None, "b": None}
        self.is_initialized = False
        self.X = []

    def _init_params(self, X):
        fr, fc = self.kernel_shape
        W = np.random.randn(fr, fc, X.shape[3], self.out_ch).astype(X.dtype)
        self.parameters = {"W": W, "b": np.zeros((1, 1, 1, self.out_ch), dtype=X.dtype)}
        self.gradients = {"W": np.zeros_like(self.parameters["W"]), "b": np.zeros_like(self.parameters["b"])}
        self.derived_variables = {"Z": [], "out_rows": []}
        self.is_initialized = True

    def forward(self, X):
        if not self.is_initialized:
            self._init_params(X)
NHWC_FORWARD_LOOP
        self.X.append(X)
        self.derived_variables["Z"].append(out + b)
        self.derived_variables["out_rows"].append(oh)
        return out + b

    def backward(self, dLdy):
        if not isinstance(dLdy, list):
            dLdy = [dLdy]
        W, s = self.parameters["W"], self.stride
        fr, fc = W.shape[:2]
        dXs = []
        for dy, X in zip(dLdy, self.X):
            dX = np.zeros_like(X)
            for i in range(dy.shape[1]):
                for j in range(dy.shape[2]):
                    patch = X[:, i * s:i * s + fr, j * s:j * s + fc, :]
                    self.gradients["W"] += np.einsum("nhwc,nf->hwcf", patch, dy[:, i, j, :])
                    dX[:, i * s:i * s + fr, j * s:j * s + fc, :] += np.einsum("hwcf,nf->nhwc", W, dy[:, i, j, :])
            self.gradients["b"] += dy.sum(axis=(0, 1, 2), keepdims=True)
            dXs.append(dX)
        return dXs[0] if len(self.X) == 1 else dXs
""".replace("NHWC_FORWARD_LOOP\n", _NHWC_FORWARD_LOOP)


def test_a_lazily_built_layer_that_records_each_forward_in_lists_is_checked_on_one_forward(tmp_path):
    # Its first forward builds the parameters and is run again with the case's: the record of
    # that first call is taken back, so backward sees the checked call alone (a list otherwise).
    path = write(tmp_path, "recording.py", RECORDING_CONV)
    frame = refcheck.check(str(path), ["conv2d"], quick=True, workers=0, selfcheck=False)
    assert len(frame) > 10
    assert statuses(frame) == {"passed"}


# --- single-sample layers, forward-only functions, misspellings ------------------------------------

SINGLE_SAMPLE_POOL = """
import numpy as np


class MaxPool:
    # Pools one image (C, H, W) at a time.

    def __init__(self, kernel_size, stride):
        self.k, self.s = kernel_size, stride

    def forward(self, x):
        k, s = self.k, self.s
        c, h, w = x.shape
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
        out = np.empty((c, oh, ow), dtype=x.dtype)
        self.where, self.shape = {}, x.shape
        for i in range(oh):
            for j in range(ow):
                window = x[:, i * s:i * s + k, j * s:j * s + k].reshape(c, -1)
                out[:, i, j] = window.max(axis=1)
                self.where[i, j] = window.argmax(axis=1)
        return out

    def backward(self, dout):
        k, s = self.k, self.s
        dx = np.zeros(self.shape, dtype=dout.dtype)
        for (i, j), arg in self.where.items():
            di, dj = np.divmod(arg, k)
            for ch in range(self.shape[0]):
                dx[ch, i * s + di[ch], j * s + dj[ch]] += dout[ch, i, j]
        return dx
"""


def test_single_sample_layer_is_called_per_sample(tmp_path):
    path = write(tmp_path, "single.py", SINGLE_SAMPLE_POOL)
    pool = load_implementation(str(path)).layers["max_pool2d"]
    assert pool.layout.startswith("one sample")
    frame = refcheck.check(str(path), ["max_pool2d"], quick=True, workers=0, selfcheck=False)
    assert statuses(frame) == {"passed"}
    assert (frame["dilation"] == "(1, 1)").all()  # no dilation argument: those configurations are left out
    # One int for kernel and stride: non-square windows are outside its supported space.
    assert frame["kernel_size"].str.match(r"\((\d+), \1\)$").all()


RELU_FORWARD_ONLY = """
import numpy as np

def relu_forward(x):
    return np.maximum(x, 0), None
"""


def test_forward_without_backward_checks_the_output_and_errs_on_gradients(tmp_path):
    path = write(tmp_path, "fwd.py", RELU_FORWARD_ONLY)
    relu = load_implementation(str(path)).layers["relu"]
    assert relu.backward is None and relu.missing == "relu_backward"
    out = tmp_path / "out"
    assert main(["run", "--impl", str(path), "--quick", "--workers", "0", "--out", str(out)]) == 1
    frame = refcheck.check(str(path), ["relu"], quick=True, workers=0)
    assert statuses(frame, "output") == {"passed"}
    assert statuses(frame, "grad_input") == {"error"}
    assert frame[frame["tensor"] == "grad_input"]["reason"].str.contains("relu_backward is missing").all()
    # By design forward-only: --forward-only compares outputs alone and exits 0.
    assert main(["run", "--impl", str(path), "--quick", "--workers", "0", "--out", str(out / "f"),
                 "--forward-only"]) == 0
    assert set(refcheck.check(str(path), ["relu"], quick=True, workers=0, forward_only=True)["tensor"]) == {"output"}


def test_a_misspelled_function_asked_for_is_a_usage_error_with_the_near_miss(tmp_path, capsys):
    path = write(tmp_path, "typo.py", UTIL + """
def conv2d_foward(x, weight, bias, *, stride=(1, 1), padding=(0, 0)):
    return x, None


def conv2d_backward(dout, cache):
    return dout, None, None
""")
    assert main(["run", "--impl", str(path), "--layers", "conv2d", "--workers", "0",
                 "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert "'conv2d_foward' looks like 'conv2d_forward'" in error
    assert "it defines: conv2d_backward, conv2d_foward, pad_images" in error


def test_a_softmax_loss_that_returns_only_the_loss_is_rejected_not_turned_into_errors(tmp_path, capsys):
    path = write(tmp_path, "lossonly.py", """
        import numpy as np

        def softmax_loss(x, y):
            shifted = x - x.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            return -log_probs[np.arange(len(y)), y].mean()
    """)
    implementation = load_implementation(str(path))
    assert "cross_entropy" not in implementation.layers
    assert [(r.name, r.layer) for r in implementation.discovery.rejected] == [("softmax_loss", "cross_entropy")]
    assert main(["inspect", "--impl", str(path)]) == 0
    text = capsys.readouterr().out
    assert "softmax_loss (looks like cross_entropy): " in text and "[cross_entropy]" in text


# --- a mapping file for what discovery cannot know -------------------------------------------------

ODD_CONV = """
import numpy as np


class Block:
    '''A conv that counts dilation from 0 and names everything its own way (NCHW, torch weight layout).'''

    def __init__(self, nk, ks, dil):
        self.dil = dil + 1
        self.filt = None

    def forward(self, x):
        d = self.dil
        f, c, kh, kw = self.filt.shape
        n, _, h, w = x.shape
        oh, ow = h - d * (kh - 1), w - d * (kw - 1)
        out = np.zeros((n, f, oh, ow), dtype=x.dtype)
        for a in range(kh):
            for b in range(kw):
                out += np.einsum("nchw,fc->nfhw", x[:, :, a * d:a * d + oh, b * d:b * d + ow], self.filt[:, :, a, b])
        self.x = x
        return out + self.offset[None, :, None, None]

    def backward(self, dy):
        d = self.dil
        f, c, kh, kw = self.filt.shape
        oh, ow = dy.shape[2:]
        dx, self.gfilt = np.zeros_like(self.x), np.zeros_like(self.filt)
        for a in range(kh):
            for b in range(kw):
                self.gfilt[:, :, a, b] = np.einsum("nchw,nfhw->fc", self.x[:, :, a * d:a * d + oh, b * d:b * d + ow], dy)
                dx[:, :, a * d:a * d + oh, b * d:b * d + ow] += np.einsum("nfhw,fc->nchw", dy, self.filt[:, :, a, b])
        self.goffset = dy.sum(axis=(0, 2, 3))
        return dx
"""

MAPPING = """
[conv2d]
class = "Block"
args = { out_channels = "nk", kernel_size = "ks", dilation = "dil" }
weight = "filt"
bias = "offset"
grad_weight = "gfilt"
grad_bias = "goffset"
offsets = { dilation = -1 }
"""


def test_a_mapping_file_plugs_in_a_class_discovery_cannot_know(tmp_path):
    path = write(tmp_path, "odd.py", ODD_CONV)
    assert load_implementation(str(path)).layers == {}
    mapping = write(tmp_path, "map.toml", MAPPING)
    conv = load_implementation(str(path), str(mapping)).layers["conv2d"]
    assert conv.adapter == "mapping" and conv.accepted == {"dilation"}
    frame = refcheck.check(str(path), ["conv2d"], quick=True, workers=0, selfcheck=False, map_path=str(mapping))
    assert statuses(frame) == {"passed"}
    assert (frame["dilation"] != "(1, 1)").any()  # dilated cases run, through the offset
    # The same table beside the code, as refcheck.toml, is found without --map.
    write(tmp_path, "refcheck.toml", MAPPING)
    assert "conv2d" in load_implementation(str(path)).layers


# --- capability-aware cases ------------------------------------------------------------------------

@pytest.mark.parametrize("quick", [False, True])
def test_cs231n_conv_gets_complete_pairwise_coverage_of_its_supported_space(quick):
    plan = plan_sweep(str(EXAMPLES / "cs231n_layers.py"), ["conv2d"], quick=quick)
    coverage = plan.coverage[0]
    assert coverage.complete and coverage.covered == coverage.required - len(coverage.infeasible)
    hparams = [case.hparam_map for case in plan.cases]
    # Every pair of its kernel, stride and pad values that torch accepts is held by an executed case.
    kernels = {case.shape_map["weight"][2:] for case in plan.cases}
    assert {(3, 3), (1, 1), (5, 5)} <= kernels
    assert {h["stride"] for h in hparams} == {(1, 1), (2, 2), (3, 3)}
    assert "same" in {h["padding"] for h in hparams}  # 'same' with an odd square kernel is one int pad
    assert all(h["dilation"] == (1, 1) and h["groups"] == 1 for h in hparams)
    assert "dilation != (1, 1)" in plan.unsupported["conv2d"]
    frame = refcheck.check(str(EXAMPLES / "cs231n_layers.py"), ["conv2d"], quick=True, workers=0, selfcheck=False)
    assert statuses(frame) == {"passed"}


NHWC_FUNCTIONS = """
import numpy as np


def my_conv(x, w, b, *, dilation=(0, 0)):
    dh, dw = dilation[0] + 1, dilation[1] + 1
    kh, kw = w.shape[:2]
    n, h, wd, c = x.shape
    oh, ow = h - dh * (kh - 1), wd - dw * (kw - 1)
    out = np.zeros((n, oh, ow, w.shape[3]), dtype=x.dtype)
    for a in range(kh):
        for q in range(kw):
            out += x[:, a * dh:a * dh + oh, q * dw:q * dw + ow, :] @ w[a, q]
    return out + (0 if b is None else b), (x, w, b is not None, (dh, dw))


def my_conv_grad(dout, cache):
    x, w, has_bias, (dh, dw) = cache
    kh, kw = w.shape[:2]
    oh, ow = dout.shape[1:3]
    dx, dwt = np.zeros_like(x), np.zeros_like(w)
    for a in range(kh):
        for q in range(kw):
            window = x[:, a * dh:a * dh + oh, q * dw:q * dw + ow, :]
            dwt[a, q] = np.einsum("nhwc,nhwf->cf", window, dout)
            dx[:, a * dh:a * dh + oh, q * dw:q * dw + ow, :] += dout @ w[a, q].T
    return dx, dwt, dout.sum(axis=(0, 1, 2)) if has_bias else None
"""

FUNCTION_MAPPING = """
[tool.refcheck.conv2d]
function = "my_conv"
backward = "my_conv_grad"
layout = "NHWC"
weight_layout = "(kh, kw, C, F)"
offsets = { dilation = -1 }
"""


def test_a_pyproject_mapping_names_functions_their_layout_and_a_dilation_counted_from_zero(tmp_path):
    path = write(tmp_path, "proj/convs.py", NHWC_FUNCTIONS)
    write(tmp_path, "proj/pyproject.toml", FUNCTION_MAPPING)
    implementation = load_implementation(str(path))
    assert implementation.mapping_source.endswith("pyproject.toml")
    conv = implementation.layers["conv2d"]
    assert conv.layout == "NHWC, weight (kh, kw, C, F)"
    assert "dilation" in conv.accepted and not {"stride", "padding", "groups"} & conv.accepted
    frame = refcheck.check(str(path), ["conv2d"], quick=True, workers=0, selfcheck=False)
    assert statuses(frame) == {"passed"}
    assert (frame["dilation"] == "(2, 2)").any()


DENSE_BIAS_NOT_SUMMED = '''
import numpy as np

class Dense:                          # weight stored (in, out), as many textbooks do
    def __init__(self, n_in, n_out):
        self.W = np.zeros((n_in, n_out))
        self.b = np.zeros(n_out)

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout                # the mistake: not summed over the batch
        return dout @ self.W.T
'''


def test_a_backward_mistake_does_not_cost_the_layout_its_forward_fits(tmp_path):
    """The probe call's bias gradient has the wrong shape in every layout; the layout kept is the
    one whose forward gave the right output, so the cases show the backward's mistake (named by
    the diagnosis), not a forward fed the weight in the wrong layout."""
    path = tmp_path / "textbook_dense.py"
    path.write_text(DENSE_BIAS_NOT_SUMMED, encoding="utf-8")
    implementation = load_implementation(str(path))
    assert "weight (in, out)" in implementation.layers["linear"].layout
    frame = refcheck.check(str(path), layers=["linear"], quick=True, workers=0, selfcheck=False)
    two_d = frame[frame["input_shape"].str.count(",") == 1]
    assert len(two_d) and set(two_d.loc[two_d["tensor"] != "grad_bias", "status"]) == {"passed"}
    bias = two_d[(two_d["tensor"] == "grad_bias") & ~two_d["input_shape"].str.startswith("(1,")]
    assert len(bias) and set(bias["status"]) == {"failed"}  # a batch of one sums to itself
    assert bias["diagnosis"].str.startswith("bias gradient not summed over the batch").all()


def test_a_module_with_no_layer_at_all_says_what_it_defines_and_the_near_miss(tmp_path, capsys):
    path = tmp_path / "typo_only.py"
    path.write_text("def conv2d_foward(x, weight, bias, *, stride, padding):\n    raise RuntimeError\n\n"
                    "def conv2d_backward(dout, cache):\n    raise RuntimeError\n", encoding="utf-8")
    assert main(["run", "--impl", str(path), "--out", str(tmp_path / "reports")]) == 2
    error = capsys.readouterr().err
    assert "has none of refcheck's layers (it defines: conv2d_backward, conv2d_foward)" in error
    assert "'conv2d_foward' looks like 'conv2d_forward'" in error
    assert "'conv2d_backward' looks like" not in error  # a right name is no near miss of another layer's


def test_inspect_names_the_values_an_adapter_s_limits_leave_out():
    """A hyperparameter the code takes may still be limited by its adapter: inspect says which of
    the case files' values are left out, as the run's "not supported" line does."""
    from refcheck.adapters.inspect_report import inspect_text

    implementation = load_implementation(str(Path(__file__).parents[1] / "examples" / "cs231n_layers.py"))
    text = inspect_text(implementation.name, implementation.layers, implementation.discovery)
    assert "reduction: any value but 'sum' (softmax_loss is the mean loss only)" in text
    assert "stride: any value but (2, 1) (CS231n conv_param has one stride for both axes)" in text
