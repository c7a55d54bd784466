"""Source text of user modules for the network tests: a CS231n-style ThreeLayerConvNet written here in
plain numpy (independent of refcheck.layers), and layer modules with planted wiring mistakes."""
from __future__ import annotations

THREE_LAYER_CONVNET = '''
import numpy as np


def _conv(x, w, b, pad):
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h, wd = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    out = np.zeros((x.shape[0], w.shape[0], h, wd), dtype=x.dtype)
    for a in range(kh):
        for c in range(kw):
            out += np.einsum("nchw,fc->nfhw", xp[:, :, a:a + h, c:c + wd], w[:, :, a, c])
    return out + b[None, :, None, None], xp


def _conv_back(dout, xp, w, pad):
    kh, kw = w.shape[2:]
    h, wd = dout.shape[2:]
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for a in range(kh):
        for c in range(kw):
            dw[:, :, a, c] = np.einsum("nfhw,nchw->fc", dout, xp[:, :, a:a + h, c:c + wd])
            dxp[:, :, a:a + h, c:c + wd] += np.einsum("nfhw,fc->nchw", dout, w[:, :, a, c])
    return dxp[:, :, pad:dxp.shape[2] - pad, pad:dxp.shape[3] - pad], dw, dout.sum(axis=(0, 2, 3))


def _pool(x):
    n, ch, h, w = x.shape
    windows = x.reshape(n, ch, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, ch, h // 2, w // 2, 4)
    first = windows.argmax(axis=-1)
    return np.take_along_axis(windows, first[..., None], axis=-1)[..., 0], first


def _pool_back(dout, first, shape):
    n, ch, h, w = shape
    windows = np.zeros((n, ch, h // 2, w // 2, 4), dtype=dout.dtype)
    np.put_along_axis(windows, first[..., None], dout[..., None], axis=-1)
    return windows.reshape(n, ch, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax, CS231n's layouts."""

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=np.float32):
        c, h, w = input_dim
        rng = np.random.default_rng(0)
        self.reg, self.dtype = reg, dtype
        self.params = {
            "W1": weight_scale * rng.standard_normal((num_filters, c, filter_size, filter_size)),
            "b1": np.zeros(num_filters),
            "W2": weight_scale * rng.standard_normal((num_filters * (h // 2) * (w // 2), hidden_dim)),
            "b2": np.zeros(hidden_dim),
            "W3": weight_scale * rng.standard_normal((hidden_dim, num_classes)),
            "b3": np.zeros(num_classes),
        }
        self.params = {k: v.astype(dtype) for k, v in self.params.items()}

    def loss(self, X, y=None):
        W1, b1, W2, b2, W3, b3 = (self.params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
        pad = (W1.shape[2] - 1) // 2
        conv, xp = _conv(X, W1, b1, pad)
        relu1 = np.maximum(conv, 0)
        pooled, first = _pool(relu1)
        flat = pooled.reshape(X.shape[0], -1)
        hidden = flat @ W2 + b2
        relu2 = np.maximum(hidden, 0)
        scores = relu2 @ W3 + b3
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = X.shape[0]
        loss = -log_probs[np.arange(n), y].mean()
        loss += 0.5 * self.reg * sum((W ** 2).sum() for W in (W1, W2, W3))
        dscores = np.exp(log_probs)
        dscores[np.arange(n), y] -= 1
        dscores /= n
        grads = {"W3": relu2.T @ dscores + self.reg * W3, "b3": dscores.sum(axis=0)}
        dhidden = (dscores @ W3.T) * (hidden > 0)
        grads["W2"] = flat.T @ dhidden + (self.reg * W2 if REG_IN_DW2 else 0)
        grads["b2"] = dhidden.sum(axis=0)
        dpooled = (dhidden @ W2.T).reshape(pooled.shape)
        drelu1 = _pool_back(dpooled, first, relu1.shape) * (conv > 0)
        _, dW1, db1 = _conv_back(drelu1, xp, W1, pad)
        grads["W1"], grads["b1"] = dW1 + self.reg * W1, db1
        return loss, grads
'''


def three_layer_convnet(reg_in_dw2: bool = True) -> str:
    """The model module; ``reg_in_dw2=False`` forgets the regularisation in W2's gradient."""
    return f"REG_IN_DW2 = {reg_in_dw2}\n" + THREE_LAYER_CONVNET


WRONG_FLATTEN = '''
from refcheck.layers import *


def flatten_backward(dout, cache):
    """Reshapes to the input's shape in channels-last order: the flatten is not inverted."""
    shape, _dtype = cache
    n, c, h, w = shape
    return dout.reshape(n, h, w, c).transpose(0, 3, 1, 2)
'''

WRONG_SAMPLE_POOL = '''
import numpy as np
from refcheck.layers import *
from refcheck.layers import max_pool2d_backward as _right


def max_pool2d_backward(dout, cache):
    """Routes each sample's pooled gradient into the next sample's positions."""
    return _right(np.roll(dout, 1, axis=0), cache)
'''

ADAM_NO_BIAS_CORRECTION = '''
import numpy as np
from refcheck.layers import *


def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
              maximize=False):
    """Adam without the bias correction of either moment."""
    beta1, beta2 = betas
    m = state.get("exp_avg", np.zeros_like(param))
    v = state.get("exp_avg_sq", np.zeros_like(param))
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    new = param - lr * m / (np.sqrt(v) + eps)
    return new, {"step": state.get("step", 0) + 1, "exp_avg": m, "exp_avg_sq": v}
'''

RAISES_IN_RELU = '''
from refcheck.layers import *


def relu_backward(dout, cache):
    raise RuntimeError("relu backward is not written yet")
'''

HANGS_IN_LINEAR = '''
import time
from refcheck.layers import *


def linear_forward(x, weight, bias):
    while True:
        time.sleep(0.1)
'''

USES_TORCH = '''
import torch
from refcheck.layers import *
from refcheck.layers import relu_forward as _relu


def relu_forward(x):
    _, cache = _relu(x)
    return torch.relu(torch.from_numpy(x)).numpy(), cache
'''

CS231N_ADAM = '''

def adam(w, dw, config=None):
    """CS231n's optim.py convention: (w, dw, config) -> (next_w, config), t counted from 0."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)
    b1, b2 = config["beta1"], config["beta2"]
    config["t"] += 1
    config["m"] = b1 * config["m"] + (1 - b1) * dw
    config["v"] = b2 * config["v"] + (1 - b2) * dw * dw
    m_hat = config["m"] / (1 - b1 ** config["t"])
    v_hat = config["v"] / (1 - b2 ** config["t"])
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    return next_w, config
'''
