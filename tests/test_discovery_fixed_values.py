"""Functions named as in the contract that have no argument for a hyperparameter are checked at the
value their code fixes, found on a probe call: a softmax over one axis without a dim (told from
its values), a 2x2 or 3x3 pool without kernel_size, a pool without stride that steps by one.
Such code stopped the run with a false 'its module changed refcheck's planning' (every case of the
layer was outside its supported space) or failed every case on its output shape.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from refcheck.cli import main
from refcheck.execution.implementation import load_implementation

SOFTMAX = '''
import numpy as np

def softmax_forward(x):
    e = np.exp(x - x.max(axis=AXIS, keepdims=True))
    y = e / e.sum(axis=AXIS, keepdims=True)
    return y, (y, AXIS)

def softmax_backward(dout, cache):
    y, axis = cache
    return y * (dout - (dout * y).sum(axis=axis, keepdims=True))
'''

POOL = '''
from refcheck.layers import max_pool2d_backward, max_pool2d_forward as _forward

def max_pool2d_forward(x{arguments}):
    return _forward(x, {call}, padding=(0, 0), dilation=(1, 1), ceil_mode=False)
'''


def _write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "layers.py"
    path.write_text(source, encoding="utf-8")
    return path


def _run(tmp_path: Path, path: Path, layer: str) -> tuple[int, pd.DataFrame]:
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(path), "--layers", layer, "--out", str(out), "--no-plots", "--allow-frameworks"])
    return code, pd.read_csv(out / "cases.csv") if (out / "cases.csv").exists() else pd.DataFrame()


@pytest.mark.parametrize("axis, dim", [(-1, -1), (1, 1), (0, 0)])
def test_a_softmax_without_dim_is_checked_along_the_axis_it_works_on(tmp_path, axis, dim):
    path = _write(tmp_path, SOFTMAX.replace("AXIS", str(axis)))
    functions = load_implementation(str(path)).layers["softmax"]
    assert functions.fixed == {"dim": dim}
    code, frame = _run(tmp_path, path, "softmax")
    assert code == 0
    ran = frame[frame["status"] != "skipped"]
    assert len(ran) and set(ran["status"]) == {"passed"} and set(ran["dim"].astype(int)) == {dim}


@pytest.mark.parametrize("kernel", [2, 3])
def test_a_pool_without_kernel_size_is_checked_at_the_kernel_it_fixes(tmp_path, kernel):
    path = _write(tmp_path, POOL.format(arguments="", call=f"kernel_size=({kernel}, {kernel}), stride=({kernel}, {kernel})"))
    assert load_implementation(str(path)).layers["max_pool2d"].fixed["kernel_size"] == (kernel, kernel)
    code, frame = _run(tmp_path, path, "max_pool2d")
    assert code == 0
    ran = frame[frame["status"] != "skipped"]
    assert len(ran) and set(ran["status"]) == {"passed"}
    assert set(ran["kernel_size"]) == {f"({kernel}, {kernel})"}


def test_a_pool_without_stride_that_steps_by_one_is_checked_at_stride_one(tmp_path):
    path = _write(tmp_path, POOL.format(arguments=", *, kernel_size", call="kernel_size=kernel_size, stride=(1, 1)"))
    assert load_implementation(str(path)).layers["max_pool2d"].fixed == {"stride": (1, 1)}
    code, frame = _run(tmp_path, path, "max_pool2d")
    ran = frame[frame["status"] != "skipped"]
    assert code == 0 and len(ran) and set(ran["status"]) == {"passed"} and set(ran["stride"]) == {"(1, 1)"}
    assert ran["kernel_size"].nunique() > 1


def test_a_layer_whose_every_case_is_unsupported_says_so(tmp_path, capsys):
    # A 5x5 pool: its kernel cannot be told from the probe call, so every case needs a kernel_size
    # the code has no argument for. Planned in a worker process, as a user's run is.
    path = _write(tmp_path, POOL.format(arguments="", call="kernel_size=(5, 5), stride=(5, 5)"))
    code, _ = _run(tmp_path, path, "max_pool2d")
    error = capsys.readouterr().err
    assert code == 2
    assert "changed refcheck's planning" not in error
    assert "every selected case needs something the implementation does not take" in error
    assert "kernel_size (no argument for it)" in error


def test_a_mappings_fixed_value_applies_to_the_function_named_as_in_the_contract(tmp_path):
    # A 5x5 pool: the probe cannot tell its kernel; the mapping says it, without naming a function.
    path = _write(tmp_path, POOL.format(arguments="", call="kernel_size=(5, 5), stride=(5, 5)"))
    mapping = tmp_path / "refcheck.toml"
    mapping.write_text("[max_pool2d]\nfixed = { kernel_size = [5, 5] }\n", encoding="utf-8")
    assert load_implementation(str(path), str(mapping)).layers["max_pool2d"].fixed["kernel_size"] == (5, 5)
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "pool.toml").write_text('[max_pool2d]\n[max_pool2d.grid]\nkernel_size = [5, 3]\ninput_size = [[10, 11]]\n'
                                     'dtype = ["float64"]\n', encoding="utf-8")
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(path), "--map", str(mapping), "--cases", str(cases), "--out", str(out),
                 "--allow-frameworks",
                 "--no-plots"])
    frame = pd.read_csv(out / "cases.csv")
    ran = frame[frame["status"] != "skipped"]
    assert code == 0 and len(ran) and set(ran["status"]) == {"passed"} and set(ran["kernel_size"]) == {"(5, 5)"}
