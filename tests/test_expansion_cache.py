"""Expansions read back from disk are the expansions: every case and coverage row equal, types included."""
from __future__ import annotations

import pytest

from refcheck.cases import load_spaces
from refcheck.cases.expansion_cache import expand_cached
from refcheck.execution.sweep import plan_sweep


@pytest.mark.parametrize("quick", [False, True])
def test_a_cached_plan_equals_a_fresh_one_for_every_built_in_layer(tmp_path, quick):
    fresh = plan_sweep(quick=quick)
    written = plan_sweep(quick=quick, expansion_cache=tmp_path)
    read = plan_sweep(quick=quick, expansion_cache=tmp_path)
    assert len(list(tmp_path.glob("*.jsonl"))) == len(fresh.coverage)
    assert read.cases == written.cases == fresh.cases
    assert read.coverage == fresh.coverage
    for mine, theirs in zip(read.cases, fresh.cases):  # 1 and 1.0, (2, 2) and [2, 2] compare equal: check types
        assert [type(v) for _, v in mine.hparams] == [type(v) for _, v in theirs.hparams]
        assert type(mine.seed) is type(theirs.seed) and type(mine.shapes) is type(theirs.shapes)


def test_a_damaged_expansion_file_is_expanded_again(tmp_path):
    space = load_spaces(None, ["conv2d"])[0]
    expected = expand_cached(space, quick=True, base_seed=0, folder=None)
    expand_cached(space, quick=True, base_seed=0, folder=tmp_path)
    (stored,) = tmp_path.glob("*.jsonl")
    stored.write_text('[1, 2]\n["conv2d"]\n')
    assert expand_cached(space, quick=True, base_seed=0, folder=tmp_path) == expected
    assert expand_cached(space, quick=True, base_seed=0, folder=tmp_path) == expected  # and written again


def test_another_seed_is_another_expansion(tmp_path):
    space = load_spaces(None, ["relu"])[0]
    first = expand_cached(space, quick=False, base_seed=0, folder=tmp_path)[0]
    other = expand_cached(space, quick=False, base_seed=7, folder=tmp_path)[0]
    assert [c.seed for c in first] != [c.seed for c in other]
    assert len(list(tmp_path.glob("*.jsonl"))) == 2


def test_the_run_keeps_expansions_beside_the_oracle_cache_unless_told_not_to(tmp_path, monkeypatch):
    from refcheck.cli import main

    cache = tmp_path / "cache"
    assert main(["run", "--layers", "relu", "--no-plots", "--out", str(tmp_path / "a"), "--oracle-cache", str(cache)]) == 0
    assert len(list((cache / "expansions").glob("*.jsonl"))) == 1
    monkeypatch.setenv("REFCHECK_CACHE_DIR", str(tmp_path / "untouched"))
    assert main(["run", "--layers", "relu", "--no-plots", "--out", str(tmp_path / "b"), "--no-oracle-cache"]) == 0
    assert not (tmp_path / "untouched").exists()


def test_values_shared_on_reading_keep_their_types():
    from refcheck.cases.expansion_cache import _decode, _encode

    values = [(1, 1.0, True, -0.0, 0.0, None, "1"), (1.0, 1), (True,), (1,), (-0.0,), (0.0,)]
    back = _decode(_encode(values), {})
    assert back == values
    for original, restored in zip(values, back):
        assert [type(v) for v in restored] == [type(v) for v in original]
        assert [repr(v) for v in restored] == [repr(v) for v in original]
