"""Object-style classes for the newer layers (Conv1d, Conv3d, ConvTranspose2d, MaxPool1d, AvgPool1d,
BatchNorm1d/2d, LayerNorm, GroupNorm, InstanceNorm2d, Dropout, Embedding), written in torch.nn's style
in tests/impls/, are found by their names and checked through the adapter: every case passes or is
skipped for a reason naming the class; a planted bug is found and diagnosed."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from refcheck.adapters.objects_convnorm import adapt_objects_convnorm
from refcheck.execution.implementation import load_implementation
from refcheck.execution.sweep import check

IMPLS = Path(__file__).parent / "impls"
LAYERS = ["conv1d", "conv3d", "conv_transpose2d", "max_pool1d", "avg_pool1d", "batch_norm", "layer_norm",
          "group_norm", "instance_norm", "dropout", "embedding"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return check(impl=str(IMPLS / "objects_convnorm.py"), quick=True, workers=2, selfcheck=False,
                 allow_frameworks=True)  # classes around refcheck's own layers


def test_every_class_is_found_under_its_torch_name():
    implementation = load_implementation(str(IMPLS / "objects_convnorm.py"))
    assert sorted(implementation.layers) == sorted(LAYERS)
    origins = {layer: implementation.layers[layer].origin for layer in LAYERS}
    assert origins["batch_norm"] == "object: BatchNorm1d, BatchNorm2d"
    assert origins["conv_transpose2d"] == "object: ConvTranspose2d" and origins["embedding"] == "object: Embedding"


def test_aliases_name_the_same_layers():
    module = type(textwrap)("aliases")
    for name in ("Deconv2d", "MaxPooling1D", "AveragePooling1D", "BatchNormalization", "LayerNormalization",
                 "GroupNormalization", "InstanceNorm", "WordEmbedding", "Conv1D", "Conv3D"):
        setattr(module, name, type(name, (), {"forward": lambda self, x: x, "backward": lambda self, d: d}))
    assert sorted(adapt_objects_convnorm(module)) == sorted(
        ["conv_transpose2d", "max_pool1d", "avg_pool1d", "batch_norm", "layer_norm", "group_norm", "instance_norm",
         "embedding", "conv1d", "conv3d"])


def test_correct_classes_pass_every_case_they_support(frame):
    assert set(frame["layer"]) == set(LAYERS)
    assert not frame["status"].isin(["failed", "error"]).any(), \
        frame.loc[frame["status"].isin(["failed", "error"]), ["case", "tensor", "reason"]].head().to_string()
    passed = frame[frame["status"] == "passed"].groupby("layer")["case"].nunique()
    assert (passed >= 5).all(), passed
    # Every compared tensor of the normalisations with running statistics, the extra outputs included.
    tensors = set(frame.loc[frame["layer"] == "batch_norm", "tensor"])
    assert {"output", "new_running_mean", "new_running_var", "grad_input", "grad_weight", "grad_bias"} <= tensors
    # BatchNorm1d ran the (N, C) and (N, C, L) cases, BatchNorm2d the (N, C, H, W) ones.
    shapes = {len(shape.split(",")) for shape in frame.loc[frame["layer"] == "batch_norm", "input_shape"]}
    assert shapes == {2, 3, 4}


def test_the_dropout_mask_is_imposed_on_a_class_that_draws_its_own(frame):
    dropout = frame[frame["layer"] == "dropout"]
    assert set(dropout["status"]) == {"passed"}
    assert {0.1, 0.5, 0.9} <= set(dropout["p"])


def _sweep(tmp_path: Path, source: str, layers: list[str]) -> pd.DataFrame:
    path = tmp_path / "layers.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return check(impl=str(path), layers=layers, quick=True, workers=0, selfcheck=False, allow_frameworks=True)


def test_a_mask_that_cannot_be_imposed_is_skipped_with_a_clear_reason(tmp_path):
    frame = _sweep(tmp_path, """
        import numpy as np

        class Dropout:
            def __init__(self, p=0.5):
                self.p, self.rng = p, np.random.default_rng(1)

            def forward(self, x):
                self.mask = self.rng.random(x.shape) < 1 - self.p
                return x * self.mask / (1 - self.p)

            def backward(self, dout):
                return dout * self.mask / (1 - self.p)
    """, ["dropout"])
    training = frame[frame["case"].str.contains("-trainT-") & frame["p"].isin([0.1, 0.5, 0.9])]
    assert not training.empty and set(training["status"]) == {"skipped"}
    # This class ignores `training`: its evaluation-mode cases fail, as they should.
    assert frame.loc[frame["status"] == "failed", "case"].str.contains("-trainF-").all()
    skipped = frame[frame["status"] == "skipped"]
    assert skipped["reason"].str.startswith("unsupported: Dropout draws its own dropout mask and refcheck could "
                                            "not impose the case's").all()


def test_a_batchnorm2d_alone_skips_the_other_ranks_naming_itself(tmp_path):
    source = (IMPLS / "objects_convnorm.py").read_text(encoding="utf-8")
    source = source.replace("class BatchNorm2d(BatchNorm1d):", "class BatchNorm2d(_BatchNorm):").replace(
        "class BatchNorm1d:", "class _BatchNorm:")
    frame = _sweep(tmp_path, source.replace("from refcheck import layers as L", "from refcheck import layers as L"),
                   ["batch_norm"])
    by_rank = frame.assign(rank=frame["input_shape"].str.count(",") + 1).groupby("rank")["status"].agg(set)
    assert by_rank[4] == {"passed"} and by_rank[2] == {"skipped"} and by_rank[3] == {"skipped"}
    reasons = set(frame.loc[frame["status"] == "skipped", "reason"])
    assert all(reason.startswith("unsupported: BatchNorm2d takes no ") for reason in reasons), reasons


def test_an_embedding_that_assigns_its_gradient_is_found_through_the_adapter():
    frame = check(impl=str(IMPLS / "objects_embedding_assigned.py"), quick=True, workers=0, selfcheck=False,
                  allow_frameworks=True)
    failed = frame[frame["status"] == "failed"]
    assert set(failed["tensor"]) == {"grad_weight"} and not failed.empty
    repeated = frame[(frame["values"] == "repeated") & (frame["tensor"] == "grad_weight")]
    assert set(repeated["status"]) == {"failed"}
    assert set(frame.loc[frame["tensor"] == "output", "status"]) == {"passed"}
    assert failed["diagnosis"].str.startswith("weight gradient assigned instead of accumulated").all()
