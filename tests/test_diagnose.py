"""Tests of the diagnosis column: planted mistakes are named, correct and random results are not.

Each module in tests/impls_diagnose/ is a built-in layer with one mistake planted. It is checked
through the public API (``refcheck.execution.sweep.check``) on a small case space written here, and every
failing row must carry the diagnosis naming that mistake, on exactly the tensors it breaks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from refcheck.cases import build_case, load_spaces
from refcheck.diagnosis import diagnose
from refcheck.compare import CaseRun
from refcheck.adapters import hparams_for_call
from refcheck.execution.implementation import load_implementation
from refcheck.cases.inputs import make_inputs, make_upstream_gradient
from refcheck.oracle import torch_results
from refcheck.specs import LAYERS
from refcheck.execution.sweep import check

FIXTURES = Path(__file__).parent / "impls_diagnose"


@pytest.fixture(autouse=True, scope="module")
def single_threaded_torch():
    """torch's thread pool only adds synchronisation cost on these tiny tensors."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- small case spaces -------------------------------------------------------------------------

CONV = """
[conv2d]
[conv2d.grid]
kernel_size = [3, [3, 2]]
stride = [1, 2]
padding = [1]
dtype = ["float32", "float64"]
[conv2d.vary]
bias = [true]
batch = [2]
channels = [[3, 4]]
input_size = [[7, 6]]
"""
CONV_SQUARE = CONV.replace("[[3, 4]]", "[[4, 4]]")
CONV_FLOAT64 = CONV.replace('dtype = ["float32", "float64"]', 'dtype = ["float64"]')
CONV_STRIDED = """
[conv2d]
[conv2d.grid]
kernel_size = [3, 2]
stride = [2, [2, 1], 3]
padding = [0, 1]
dilation = [1, 2]
dtype = ["float32", "float64"]
[conv2d.vary]
bias = [true, false]
channels = [[2, 4]]
input_size = [[9, 8]]
"""
CONV_PADDED = """
[conv2d]
[conv2d.grid]
kernel_size = [3, 5]
padding = [1, [1, 0], 2, "same"]
dtype = ["float32", "float64"]
[conv2d.vary]
channels = [[2, 3]]
input_size = [[8, 7]]
"""
LINEAR = """
[linear]
[linear.grid]
features = [[6, 6], [3, 5]]
batch_shape = [[4], [2, 3]]
dtype = ["float32", "float64"]
[linear.vary]
bias = [true]
"""
LINEAR_SQUARE = LINEAR.replace("[[6, 6], [3, 5]]", "[[6, 6]]")
MSE = """
[mse_loss]
[mse_loss.grid]
input_shape = [[4, 5], [8]]
reduction = ["mean", "sum"]
dtype = ["float32", "float64"]
"""
CROSS_ENTROPY = """
[cross_entropy]
[cross_entropy.grid]
input_shape = [[4, 5], [6, 3]]
reduction = ["mean", "sum"]
dtype = ["float32", "float64"]
"""
MAX_POOL = """
[max_pool2d]
[max_pool2d.grid]
kernel_size = [3, [3, 2]]
stride = [1, 2]
padding = [0, 1]
values = ["normal"]
dtype = ["float32", "float64"]
[max_pool2d.vary]
input_size = [[7, 6]]
"""
MAX_POOL_NEGATIVE = MAX_POOL.replace('padding = [0, 1]', 'padding = [1, [1, 0]]').replace(
    '"normal"', '"very_negative"')
MAX_POOL_TIES = MAX_POOL.replace('"normal"', '"ties"')
MAX_POOL_CEIL = """
[max_pool2d]
[max_pool2d.grid]
kernel_size = [2, 3]
stride = [2]
ceil_mode = [true]
input_size = [[7, 7], [8, 6]]
dtype = ["float32", "float64"]
"""
MAX_POOL_SQUARE = """
[max_pool2d]
[max_pool2d.grid]
kernel_size = [2]
stride = [2]
channels = [4]
input_size = [[6, 6]]
dtype = ["float32", "float64"]
"""
AVG_POOL = """
[avg_pool2d]
[avg_pool2d.grid]
kernel_size = [3, [3, 2]]
stride = [1, 2]
padding = [1]
ceil_mode = [false, true]
count_include_pad = [false]
dtype = ["float32", "float64"]
[avg_pool2d.vary]
input_size = [[7, 6]]
"""
RELU = """
[relu]
[relu.grid]
input_shape = [[4, 5], [2, 3, 4, 4]]
dtype = ["float32", "float64"]
"""


def _frame(tmp_path: Path, module: str, space: str, layers: list[str]) -> pd.DataFrame:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    (folder / "space.toml").write_text(space, encoding="utf-8")
    implementation = None if module == "builtin" else str(FIXTURES / f"{module}.py")
    return check(impl=implementation, layers=layers, cases=folder, workers=0, selfcheck=False,
                 allow_frameworks=True)  # planted mistakes built on refcheck's own layers


# --- planted mistakes ---------------------------------------------------------------------------

# (fixture module, case space, layer, {failing tensor: phrase its diagnosis must contain}, errors allowed)
PLANTED = [
    ("conv_true_convolution", CONV, "conv2d",
     {"output": "kernel flipped", "grad_input": "kernel flipped", "grad_weight": "kernel flipped"}, False),
    ("conv_grad_weight_flipped", CONV, "conv2d", {"grad_weight": "weight gradient flipped"}, False),
    ("conv_grad_weight_cf", CONV, "conv2d", {"grad_weight": "weight gradient layout transposed"}, False),
    ("conv_weight_cf", CONV_SQUARE, "conv2d",
     {"output": "weight layout transposed", "grad_input": "weight layout transposed"}, False),
    ("conv_nhwc_output", CONV, "conv2d", {"output": "NHWC instead of NCHW"}, False),
    ("conv_bias_per_sample", CONV, "conv2d", {"grad_bias": "bias gradient not summed over the batch"}, False),
    ("conv_stride_ignored", CONV_STRIDED, "conv2d",
     {"grad_input": "stride ignored in the backward", "grad_weight": "stride ignored in the backward"}, False),
    ("conv_padding_cropped", CONV_PADDED, "conv2d", {"grad_input": "padding cropped wrong"}, False),
    ("conv_float32", CONV_FLOAT64, "conv2d",
     {"output": "float32 arithmetic", "grad_input": "float32 arithmetic", "grad_weight": "float32 arithmetic",
      "grad_bias": "float32 arithmetic"}, False),
    ("linear_weight_in_out", LINEAR_SQUARE, "linear",
     {"output": "weight layout transposed", "grad_input": "weight layout transposed",
      "grad_weight": "weight gradient transposed"}, False),
    ("linear_grad_weight_transposed", LINEAR, "linear", {"grad_weight": "weight gradient transposed"}, False),
    ("linear_bias_per_sample", LINEAR, "linear", {"grad_bias": "bias gradient not summed over the batch"}, False),
    ("conv_assigned", CONV, "conv2d", {"grad_weight": "grad_weight assigned, not accumulated: it holds only the last "
                                       "sample's term", "grad_bias": "at the last output position"}, False),
    ("linear_assigned", LINEAR, "linear", {"grad_weight": "grad_weight assigned, not accumulated",
                                           "grad_bias": "grad_bias assigned, not accumulated"}, False),
    ("mse_half", MSE, "mse_loss",
     {"output": "the loss has a 1/2 factor", "grad_input": "missing factor 2 in the MSE gradient"}, False),
    ("mse_no_factor_two", MSE, "mse_loss", {"grad_input": "missing factor 2 in the MSE gradient"}, False),
    ("losses_reduction", MSE, "mse_loss",
     {"output": "reduction='sum': do not divide by the element count",
      "grad_input": "reduction='sum': do not divide by the element count"}, False),
    ("losses_reduction", CROSS_ENTROPY, "cross_entropy",
     {"output": "divides by the batch size", "grad_input": "divides by the batch size"}, False),
    ("max_pool_zero_padding", MAX_POOL_NEGATIVE, "max_pool2d",
     {"output": "max pooling padded with zeros", "grad_input": "max pooling padded with zeros"}, False),
    ("max_pool_ties", MAX_POOL_TIES, "max_pool2d", {"grad_input": "ties sent to every maximum"}, False),
    ("max_pool_assigned", MAX_POOL, "max_pool2d", {"grad_input": "assigned instead of accumulated"}, False),
    ("avg_pool_assigned", AVG_POOL, "avg_pool2d", {"grad_input": "assigned instead of accumulated"}, False),
    ("avg_pool_count_include_pad", AVG_POOL, "avg_pool2d",
     {"output": "count_include_pad ignored", "grad_input": "count_include_pad ignored"}, False),
    ("max_pool_ceil_ignored", MAX_POOL_CEIL, "max_pool2d",
     {"output": "ceil_mode ignored", "grad_input": "ceil_mode ignored"}, False),
    # Written for channels-last input: its backward cannot even run on NCHW gradients (error rows).
    ("max_pool_nhwc", MAX_POOL_SQUARE, "max_pool2d", {"output": "NHWC instead of NCHW"}, True),
    ("relu_in_place", RELU, "relu", {"output": "mutated in place", "grad_input": "mutated in place"}, False),
]


@pytest.mark.parametrize("module, space, layer, expected, errors_allowed", PLANTED,
                         ids=[f"{row[0]}-{row[2]}" for row in PLANTED])
def test_planted_mistake_is_diagnosed(tmp_path, module, space, layer, expected, errors_allowed):
    frame = _frame(tmp_path, module, space, [layer])
    assert errors_allowed or not (frame["status"] == "error").any(), frame[frame["status"] == "error"]["reason"]
    failed = frame[frame["status"] == "failed"]
    # The mistake breaks exactly these tensors, and every such row names it.
    assert set(failed["tensor"]) == set(expected)
    for tensor, phrase in expected.items():
        rows = failed[failed["tensor"] == tensor]
        named = rows["diagnosis"].fillna("").str.contains(phrase, regex=False)
        assert named.all(), rows.loc[~named, ["case", "reason", "diagnosis"]].to_string()
    assert frame.loc[frame["status"] == "passed", "diagnosis"].isna().all()


MAX_POOL_MAGNITUDES = """
[max_pool2d]
[max_pool2d.grid]
kernel_size = [3, 2]
stride = [1, 2]
padding = [0]
values = ["normal", "near_max", "tiny"]
dtype = ["float64"]
[max_pool2d.vary]
input_size = [[8, 6]]
"""


def test_a_wrong_gradient_is_never_called_float32_arithmetic(tmp_path):
    """Near float32's largest values torch's own float32 result is far off too, so the tolerance
    for float32 arithmetic is wide there; a gradient wrong by its whole size is still no rounding."""
    frame = _frame(tmp_path, "max_pool_whole_window", MAX_POOL_MAGNITUDES, ["max_pool2d"])
    failed = frame[frame["status"] == "failed"]
    assert set(failed["tensor"]) == {"grad_input"} and set(failed["values"]) == {"normal", "near_max", "tiny"}
    assert not failed["diagnosis"].fillna("").str.contains("float32 arithmetic").any(), \
        failed[["case", "diagnosis"]].to_string()


def test_float32_cases_of_a_float32_implementation_pass(tmp_path):
    """The float32 arithmetic diagnosis is about float64 inputs only: float32 cases pass."""
    frame = _frame(tmp_path, "conv_float32", CONV, ["conv2d"])
    assert (frame.loc[frame["dtype"] == "float32", "status"] == "passed").all()
    assert (frame.loc[frame["dtype"] == "float64", "status"] == "failed").all()


def test_message_says_what_to_fix(tmp_path):
    frame = _frame(tmp_path, "conv_true_convolution", CONV, ["conv2d"])
    message = frame.loc[frame["tensor"] == "output", "diagnosis"].iloc[0]
    assert message == ("kernel flipped: your conv2d is a true convolution; torch's conv2d is a cross-correlation "
                       "(do not rotate the kernel in forward)")
    padded = _frame(tmp_path, "conv_padding_cropped", CONV_PADDED, ["conv2d"])
    row = padded[(padded["status"] == "failed") & (padded["padding"] == "(1, 1)")].iloc[0]
    # Where it was cut (the origin) and where it should have been (after one row and column of padding).
    assert "cut at rows 0:8, columns 0:7" in row["diagnosis"]
    assert "rows 1:9, columns 1:8" in row["diagnosis"]


# --- no false diagnoses -------------------------------------------------------------------------

SPACES = {"conv2d": CONV_STRIDED, "linear": LINEAR, "max_pool2d": MAX_POOL_NEGATIVE, "avg_pool2d": AVG_POOL,
          "mse_loss": MSE, "cross_entropy": CROSS_ENTROPY}


@pytest.mark.parametrize("layer", list(SPACES))
def test_random_results_get_no_diagnosis(tmp_path, layer):
    frame = _frame(tmp_path, "garbage", SPACES[layer], [layer])
    assert (frame["status"] == "failed").all()
    assert frame["diagnosis"].isna().all(), frame.loc[frame["diagnosis"].notna(), ["case", "diagnosis"]]


def test_unlisted_mistake_gets_no_diagnosis(tmp_path):
    frame = _frame(tmp_path, "conv_bias_twice", CONV, ["conv2d"])
    failed = frame[frame["status"] == "failed"]
    assert set(failed["tensor"]) == {"output"}
    assert failed["diagnosis"].isna().all()


@pytest.mark.parametrize("layer", list(SPACES) + ["relu"])
def test_builtin_layers_get_no_diagnosis(tmp_path, layer):
    frame = _frame(tmp_path, "builtin", SPACES.get(layer, RELU), [layer])
    assert (frame["status"] == "passed").all()
    assert frame["diagnosis"].isna().all()


def _builtin_run(layer: str, space: str, tmp_path: Path) -> list[CaseRun]:
    """CaseRuns of the built-in layer, executed as refcheck executes them."""
    folder = tmp_path / layer
    folder.mkdir()
    (folder / "space.toml").write_text(space, encoding="utf-8")
    (parsed,) = load_spaces(folder, [layer])
    functions = load_implementation(None).layers[layer]
    runs = []
    for params in ({"dtype": "float32"}, {"dtype": "float64"}):
        case = build_case(parsed, {name: values[-1] for name, values in parsed.params.items()} | params)
        spec = LAYERS[layer]
        tensors = make_inputs(case)
        dout = make_upstream_gradient(case, spec.output_shape(case.shape_map, case.hparam_map))
        run = CaseRun(case, spec, functions, tensors, dout, hparams_for_call(functions, case.hparam_map))
        run.reference = torch_results(layer, tensors, case.hparam_map, dout, "float64")
        run.torch_at_dtype = torch_results(layer, tensors, case.hparam_map, dout, case.dtype)
        out, cache = functions.forward(*[tensors[name] for name in spec.tensors], **run.hparams)
        grads = functions.backward(dout.copy(), cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        run.results = {"output": out, **{f"grad_{n}": g for n, g in zip(spec.differentiable, grads)}}
        runs.append(run)
    return runs


@pytest.mark.parametrize("layer", list(SPACES))
def test_diagnose_of_a_correct_run_is_empty(tmp_path, layer):
    """Called directly (not only on failures), a correct result gets no finding."""
    for run in _builtin_run(layer, SPACES[layer], tmp_path):
        assert diagnose(run) == {}


def test_diagnose_of_a_perturbed_result_names_the_factor(tmp_path):
    """The same run with the loss gradient scaled by the element count is diagnosed directly."""
    run = _builtin_run("mse_loss", MSE, tmp_path)[1]
    assert run.case.hparam_map["reduction"] == "sum"
    count = run.tensors["input"].size
    run.results["grad_input"] = run.results["grad_input"] / count
    assert diagnose(run) == {"grad_input": f"reduction='sum': do not divide by the element count ({count})"}


def _conv_with_unrotated_backward(run: CaseRun) -> None:
    """grad_input of torch's conv2d with the kernel rotated: what a backward that forgets to rotate gives."""
    x = torch.tensor(run.tensors["input"], dtype=torch.float64, requires_grad=True)
    weight = torch.tensor(np.ascontiguousarray(run.tensors["weight"][..., ::-1, ::-1]), dtype=torch.float64)
    out = torch.nn.functional.conv2d(x, weight, None, **run.case.hparam_map)
    out.backward(torch.tensor(run.dout, dtype=torch.float64))
    run.results["grad_input"] = x.grad.numpy().astype(run.case.dtype)


EXTRA = [
    ("linear", LINEAR, "grad_weight", lambda run: run.results.update(grad_weight=run.results["grad_weight"] / 6),
     "grad_weight averaged over the batch (every leading axis) (divided by 6)"),
    ("mse_loss", MSE, "grad_input", lambda run: run.results.update(grad_input=run.results["grad_input"] / run.dout),
     "upstream gradient ignored: multiply the gradient by dout"),
    ("conv2d", CONV, "grad_input", _conv_with_unrotated_backward, "kernel not rotated in the backward"),
]


@pytest.mark.parametrize("layer, space, tensor, plant, phrase", EXTRA, ids=[row[4][:24] for row in EXTRA])
def test_further_mistakes_named_directly(tmp_path, layer, space, tensor, plant, phrase):
    """Mistakes beyond the planted modules, planted straight into a run's results."""
    for run in _builtin_run(layer, space, tmp_path):
        plant(run)
        findings = diagnose(run)
        assert set(findings) == {tensor}
        assert phrase in findings[tensor]


def test_mutation_is_reported_on_every_tensor(tmp_path):
    run = _builtin_run("linear", LINEAR, tmp_path)[0]
    run.mutated = ["backward mutated the upstream gradient 'dout' in place"]
    findings = diagnose(run)
    assert set(findings) == {"output", "grad_input", "grad_weight", "grad_bias"}
    assert all("mutated in place" in text and "'dout'" in text for text in findings.values())


def test_diagnose_never_raises(tmp_path):
    run = _builtin_run("conv2d", CONV_STRIDED, tmp_path)[0]
    run.results = {"output": "not an array", "grad_input": np.zeros((1, 2)), "grad_weight": None,
                   "grad_bias": object()}

    def exploding(*args, **kwargs):
        raise RuntimeError("user code")

    run.functions = type(run.functions)(run.functions.layer, exploding, exploding, None)
    assert diagnose(run) == {}
    run.reference = None  # a broken run: still no exception, just no finding
    assert diagnose(run) == {}


LAYER_NORM_EPS_OUTSIDE = '''
import numpy as np


def layer_norm_forward(x, weight, bias, *, normalized_shape, eps=1e-5):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    inv = 1 / (np.sqrt(x.var(axis=axes, keepdims=True)) + eps)       # the mistake: eps outside the root
    xhat = (x - mu) * inv
    out = xhat if weight is None else xhat * weight + bias
    return out, (xhat, inv, weight, axes)


def layer_norm_backward(dout, cache):
    xhat, inv, weight, axes = cache
    lead = tuple(range(dout.ndim - len(axes)))
    g = dout if weight is None else dout * weight
    mean = lambda a: a.mean(axis=axes, keepdims=True)
    dx = inv * (g - mean(g) - xhat * mean(g * xhat))
    if weight is None:
        return dx, None, None
    return dx, (dout * xhat).sum(axis=lead), dout.sum(axis=lead)
'''


def test_a_small_formula_mistake_is_not_called_float32_arithmetic(tmp_path):
    """eps outside the square root differs from torch by about a float32 eps on nearly constant
    float64 inputs, within the float32 tolerance, but many times torch's own float32 error there
    and not made of float32 numbers: a formula mistake, named as such, not a precision one."""
    path = tmp_path / "norms.py"
    path.write_text(LAYER_NORM_EPS_OUTSIDE, encoding="utf-8")
    frame = check(str(path), ["layer_norm"], workers=0, selfcheck=False)
    failed = frame[frame["status"] == "failed"]
    assert (failed["values"] == "near_constant").any()
    assert not failed["diagnosis"].fillna("").str.contains("float32 arithmetic").any(), \
        failed.loc[failed["diagnosis"].fillna("").str.contains("float32"), ["case", "tensor", "diagnosis"]].to_string()


CS231N_AFFINE = '''
import numpy as np


def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = DW
    return dx, dw, dout.sum(axis=0)
'''


def test_a_transposed_weight_gradient_is_told_in_the_user_s_own_layout(tmp_path):
    # CS231n's w is (in, out): the advice is x.T @ dout there, not torch's dout.T @ x (the very
    # mistake), and the layout it names is the user's, not that of the adapter's boundary.
    path = tmp_path / "affine.py"
    path.write_text(CS231N_AFFINE.replace("DW", "dout.T @ x.reshape(x.shape[0], -1)"))
    assert load_implementation(str(path)).layers["linear"].layout == "weight (in, out)"
    frame = check(str(path), ["linear"], workers=1, selfcheck=False)
    told = frame.loc[(frame["tensor"] == "grad_weight") & (frame["status"] == "failed"), "diagnosis"].dropna()
    assert len(told) and told.str.contains("x.T @ dout, not dout.T @ x", regex=False).all()
    path.write_text(CS231N_AFFINE.replace("DW", "x.reshape(x.shape[0], -1).T @ dout"))
    assert set(check(str(path), ["linear"], quick=True, workers=1, selfcheck=False)["status"]) <= {"passed", "skipped"}


SOFTMAX_LOSS = '''
import numpy as np


def cross_entropy_forward(x, target, *, reduction):
    log_p = LOG_P
    p = np.exp(log_p)
    loss = -log_p[np.arange(len(target)), target]
    return (loss.mean() if reduction == "mean" else loss.sum()), (p, target, reduction)


def cross_entropy_backward(dout, cache):
    p, target, reduction = cache
    dx = p.copy()
    dx[np.arange(len(target)), target] -= 1
    return dx * dout / (len(target) if reduction == "mean" else 1)
'''


def test_a_softmax_loss_without_max_subtraction_is_diagnosed_where_it_overflows(tmp_path):
    path = tmp_path / "loss.py"
    path.write_text(SOFTMAX_LOSS.replace("LOG_P", "np.log(np.exp(x) / np.exp(x).sum(axis=1, keepdims=True))"))
    frame = check(str(path), ["cross_entropy"], workers=1, selfcheck=False)
    failed = frame[frame["status"] == "failed"]
    assert len(failed) and (failed["values"] == "large").all()
    assert failed["diagnosis"].fillna("").str.startswith("exp taken without subtracting the max").all()
    shifted = "(x - x.max(axis=1, keepdims=True))"
    path.write_text(SOFTMAX_LOSS.replace("LOG_P", f"{shifted} - np.log(np.exp({shifted}).sum(axis=1, keepdims=True))"))
    assert set(check(str(path), ["cross_entropy"], workers=1, selfcheck=False)["status"]) == {"passed"}
