"""A function or class named as a layer in a recognised style that takes the probe call's arguments
but returns what does not fit (an assignment skeleton's None, a loss as a 1-element array), or a
CS231n forward whose backward is missing, is checked, so its cases fail or error and the run does
not pass: such code was counted as 'not implemented' and the run exited 0. A candidate whose
signature does not take the arguments is still left out (a misfit, not a finding).
"""
from __future__ import annotations

import json
from pathlib import Path

from refcheck.cli import main
from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import check

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cs231n_layers.py"


def _with(tmp_path: Path, extra: str, base: str | None = None) -> Path:
    path = tmp_path / "submission.py"
    path.write_text((EXAMPLE.read_text(encoding="utf-8") if base is None else base) + extra, encoding="utf-8")
    return path


def _rows(path: Path, layer: str):
    frame = check(str(path), [layer], quick=True, workers=0, selfcheck=False)
    return frame[frame["status"] != "skipped"]


def test_a_skeleton_forward_returning_none_fails_its_cases(tmp_path):
    path = _with(tmp_path, '''

def conv_forward_naive(x, w, b, conv_param):
    out = None
    # TODO: implement the forward pass
    return out, (x, w, b, conv_param)
''')
    rows = _rows(path, "conv2d")
    output = rows[rows["tensor"] == "output"]
    assert len(output) and set(output["status"]) == {"failed"}
    assert output["reason"].str.contains("output is None").all()


def test_a_loss_returned_as_a_one_element_array_fails_on_its_shape(tmp_path):
    path = _with(tmp_path, '''

def softmax_loss(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    return np.array([-log_probs[np.arange(n), y].mean()]), dx / n
''')
    rows = _rows(path, "cross_entropy")
    assert set(rows.loc[rows["tensor"] == "output", "status"]) == {"failed"}
    assert rows["reason"].str.contains(r"shape \(1,\)").any()


def test_a_cs231n_forward_without_its_backward_is_checked_and_its_gradients_are_errors(tmp_path):
    source = EXAMPLE.read_text(encoding="utf-8")
    start = source.index("def conv_backward_naive(")
    end = source.index("\ndef ", start + 1)
    path = _with(tmp_path, "", source[:start] + source[end:])
    functions = load_implementation(str(path)).layers["conv2d"]
    assert functions.backward is None and functions.missing == "conv_backward_naive"
    rows = _rows(path, "conv2d")
    assert set(rows.loc[rows["tensor"] == "output", "status"]) == {"passed"}
    gradients = rows[rows["tensor"] != "output"]
    assert set(gradients["status"]) == {"error"}
    assert gradients["reason"].str.contains("conv_backward_naive is missing").all()


def test_a_skeleton_class_is_checked_and_a_function_of_another_signature_is_not(tmp_path):
    path = tmp_path / "classes.py"
    path.write_text('''
import numpy as np


class Linear:
    def __init__(self, in_features, out_features):
        self.W = np.zeros((out_features, in_features))
        self.b = np.zeros(out_features)

    def forward(self, x):
        pass                                  # TODO

    def backward(self, dout):
        pass                                  # TODO


def conv_forward_naive(x):                    # not CS231n's conv: another signature
    return x, None


def conv_backward_naive(dout, cache):
    return dout
''', encoding="utf-8")
    implementation = load_implementation(str(path))
    assert "conv2d" not in implementation.layers
    rows = _rows(path, "linear")
    assert set(rows.loc[rows["tensor"] == "output", "status"]) == {"failed"}


def test_inspect_does_not_claim_a_layout_was_found_when_no_layout_fitted(tmp_path, capsys):
    from refcheck.cli import main

    path = tmp_path / "skeleton.py"
    path.write_text('''
class Linear:
    def __init__(self, in_features, out_features):
        pass

    def forward(self, x):
        return None

    def backward(self, dout):
        return None
''', encoding="utf-8")
    main(["inspect", "--impl", str(path)])
    printed = capsys.readouterr().out
    assert "no layout fitted the probe call" in printed and "found from output shapes" not in printed


def test_a_loss_stub_returning_none_is_checked(tmp_path):
    """softmax_loss whose body is `pass` is an assignment stub, checked: its cases fail on the missing
    loss (one that returns the loss alone is another convention, left out with the reason)."""
    path = _with(tmp_path, "\n\ndef softmax_loss(x, y):\n    pass\n")
    rows = _rows(path, "cross_entropy")
    output = rows[rows["tensor"] == "output"]
    assert len(output) and set(output["status"]) == {"failed"} and output["reason"].str.contains("is None").all()


def test_what_the_import_and_the_probe_calls_print_is_not_in_a_case_s_captured_output(tmp_path):
    # A class is probed in the worker's process when it loads the module: those calls printed
    # into the first case's output, as if that case had called forward several times.
    path = tmp_path / "printing.py"
    path.write_text(PRINTING_RELU)
    out = tmp_path / "reports"
    main(["run", "--impl", str(path), "--layers", "relu", "--quick", "--out", str(out), "--no-plots",
          "--workers", "1", "--no-selfcheck"])
    records = json.loads((out / "results.json").read_text())["records"]
    outputs = {record["case"]: record.get("stdout") for record in records}
    assert len(outputs) > 3 and len(set(outputs.values())) == 1  # the first case's as the others'
    assert all("forward called" in text and "imported" not in text for text in outputs.values())


def test_what_a_module_that_fails_to_load_printed_is_in_its_error_row(tmp_path):
    from refcheck.adapters.probe import probe_case
    from refcheck.execution.worker import run_implementation

    path = tmp_path / "broken.py"
    # Written to the file descriptor, as a worker's print is (pytest holds sys.stdout here).
    path.write_text(PRINTING_RELU + 'import os\nos.write(1, b"loading weights")\nraise RuntimeError("no weights file")\n')
    raw = run_implementation(str(path), probe_case("relu"), selfcheck=False)
    assert raw["status"] == "error" and "no weights file" in raw["reason"]
    assert "loading weights" in raw["stdout"]


PRINTING_RELU = '''
import numpy as np

print("module imported")


class ReLU:
    def forward(self, x):
        print("forward called")
        self.x = x
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * (self.x > 0)
'''
