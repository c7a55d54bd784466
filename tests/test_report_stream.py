"""Records streamed to disk and the report files written piece by piece from them: the pieces
must equal what pandas, json and ElementTree write for the whole run at once."""
from __future__ import annotations

import json
import math
import pickle
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from refcheck.oracle.cache import OracleCache, _pack, _unpack
from refcheck.report import cases_frame, load_results, write_reports
from refcheck.report.files import _results_json
from refcheck.report.junit import junit_chunks, junit_xml
from refcheck.report.stream import RecordStream, as_source
from refcheck.report.tables import cases_csv_chunks


def _record(case: str, layer: str, tensor: str, status: str = "passed", **extra) -> dict:
    return {"layer": layer, "case": case, "tensor": tensor, "dtype": "float64", "status": status,
            "reason": "" if status == "passed" else f"{tensor} wrong", "max_abs_error": 0.5, **extra}


# Columns whose types change from record to record, as across layers: ints and tuples, ints and
# None, bools and None, floats and NaN, strings and missing keys.
MIXED = [
    _record("a[1]", "conv1d", "output", kernel_size=3, groups=1, seed=1, duration_s=0.1),
    _record("a[1]", "conv1d", "grad_input", "failed", kernel_size=3, groups=1, seed=1, mismatched=4, duration_s=0.1),
    _record("b[1]", "conv2d", "output", kernel_size=(3, 2), groups=None, seed=2, training=True, duration_s=0.2),
    _record("c[1]", "relu", "output", "error", max_abs_error=math.nan, seed=3, values="zeros", duration_s=0.3),
    _record("d[1]", "batch_norm", "output", training=False, seed=4, input_shape=(2, 3), duration_s=math.inf),
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
def test_cases_csv_in_pieces_equals_pandas_writing_the_whole_frame(chunk):
    expected = cases_frame(MIXED).to_csv(index=False)
    assert "".join(cases_csv_chunks(MIXED, chunk=chunk)) == expected
    assert ",3," in expected and "(3, 2)" in expected  # ints stay ints next to tuples


def test_cases_csv_of_no_records_is_the_header():
    assert "".join(cases_csv_chunks([])) == cases_frame([]).to_csv(index=False)


def test_cases_csv_of_records_of_one_shape_seen_again_after_new_columns_appeared():
    # The column types are worked out once per shape of record (its keys and value types): a shape
    # met again after other columns appeared, or with a NaN where it had a number, still counts.
    first = _record("a[1]", "conv2d", "output", note="x", kernel_size=3)
    widened = _record("b[1]", "conv2d", "output", note="y", kernel_size=3, extra="wide")
    again = _record("c[1]", "conv2d", "grad_input", "failed", note=math.nan, kernel_size=4, max_abs_error=math.nan)
    narrow = {key: value for key, value in again.items() if key != "kernel_size"}  # ints and a gap
    records = [first, widened, first, again, {**first, "case": "d[1]", "note": math.nan}, narrow, first]
    expected = cases_frame(records).to_csv(index=False)
    # Ints with gaps stay ints (pandas alone would write the column as floats, "3.0").
    assert "".join(cases_csv_chunks(records)) == expected and ",3," in expected and ",3.0," not in expected
    floats = [{**first, "kernel_size": 2.5}, narrow]  # a float among them: a float column
    assert "".join(cases_csv_chunks(floats)) == cases_frame(floats).to_csv(index=False)
    assert ",2.5," in cases_frame(floats).to_csv(index=False)
    for order in (records[::-1], [again, first, widened]):
        assert "".join(cases_csv_chunks(order)) == cases_frame(order).to_csv(index=False)


def test_results_json_in_pieces_is_the_whole_object_one_record_per_line():
    meta = {"implementation": "x", "options": {"seed": 0}}
    import math

    import pandas as pd

    summary = pd.DataFrame([{"layer": "relu", "cases": 1, "ratio": math.nan}])
    odd = [{**MIXED[0], "max_abs_error": math.inf, "nested": {"a": [math.nan, 1.5, (2, 3)]}}]
    for records in (MIXED, [], odd):
        from refcheck.report.files import _json_safe

        expected = _json_safe({**meta, "summary": summary.to_dict(orient="records"), "records": list(records)})
        text = "".join(_results_json(meta, summary, records))
        assert json.loads(text) == expected
        lines = text.split('"records": [', 1)[1].split("\n")
        assert sum(line.startswith("  {") for line in lines) == len(records)
    assert json.loads("".join(_results_json(meta, summary, odd)))["records"][0]["nested"] == {"a": [None, 1.5, [2, 3]]}


@pytest.mark.parametrize("record", [
    {"v": [{None: 1}]}, {True: 1}, {"v": [{(1, 2): 1}]}, {"v": {"k": math.nan}}, {"v": (1.5, math.inf)},
    {"v": np.float32(math.nan)}, {"v": np.int64(3)}, {"a": math.nan, "b": "x"}, {"a": 1.5, "b": None, "c": True},
])
def test_a_record_is_written_as_its_safe_form_whatever_it_holds(record):
    from refcheck.report.files import _encode_record, _json_safe_record

    encode = json.JSONEncoder(default=str, allow_nan=False).encode
    assert _encode_record(encode, record) == encode(_json_safe_record(record))


def test_junit_in_pieces_equals_the_whole_tree():
    document = ET.fromstring(junit_xml(MIXED).split("\n", 1)[1])
    assert [suite.get("name") for suite in document] == ["conv1d", "conv2d", "relu", "batch_norm"]
    assert document[0].get("failures") == "1" and document[2].get("errors") == "1"
    assert "".join(junit_chunks([])) == ET.tostring(ET.Element("testsuites", name="refcheck"), encoding="unicode",
                                                     xml_declaration=True)


def test_the_stream_gives_back_records_in_case_order_with_their_types(tmp_path):
    by_case: dict[str, list[dict]] = {}
    for record in MIXED:
        by_case.setdefault(record["case"], []).append({**record, "weight": np.float32(1.5)})
    stream = RecordStream(tmp_path)
    for case_id in reversed(list(by_case)):  # cases finish in any order
        stream.add(case_id, by_case[case_id][0]["layer"], by_case[case_id])
    stream.set_order(["d[1]", *by_case, "never-finished"])
    back = list(stream)
    assert [r["case"] for r in back] == ["d[1]", "a[1]", "a[1]", "b[1]", "c[1]"]
    assert back[3]["kernel_size"] == (3, 2) and type(back[0]["weight"]) is np.float32
    assert [layer for layer, _ in stream.layers()] == ["batch_norm", "conv1d", "conv2d", "relu"]
    assert [len(rows) for _, rows in stream.layers()] == [1, 2, 1, 1]
    assert stream.cases == 4
    folder = stream.folder
    stream.close()
    assert not folder.exists() and list(tmp_path.iterdir()) == []


def test_cases_added_after_a_reading_are_appended_whole(tmp_path):
    with RecordStream(tmp_path) as stream:
        stream.add("a[1]", "conv1d", MIXED[:2])
        assert [r["tensor"] for r in stream] == ["output", "grad_input"]
        stream.add("b[1]", "conv2d", MIXED[2:3])
        assert [r["case"] for r in stream] == ["a[1]", "a[1]", "b[1]"]
        stream.add("c[1]", "relu", MIXED[3:4])
        stream.set_order(["c[1]", "a[1]", "b[1]"])
        back = list(stream)
        assert back[1:] == MIXED[:3] and repr(back[0]) == repr(MIXED[3])  # (it holds a NaN)


def test_an_append_interrupted_midway_leaves_the_cases_before_and_after_it_whole(tmp_path):
    with RecordStream(tmp_path) as stream:
        stream.add("a[1]", "conv1d", MIXED[:1])
        stream._file = _Interrupting(stream._file)
        with pytest.raises(KeyboardInterrupt):
            stream.add("b[1]", "conv2d", MIXED[2:3])
        stream._file = stream._file.inner
        stream.add("c[1]", "relu", MIXED[4:5])
        assert [r["case"] for r in stream] == ["a[1]", "d[1]"] and stream.cases == 2


class _Interrupting:
    """A file whose next write stops halfway with a Ctrl-C."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def write(self, data: bytes) -> int:
        self.inner.write(data[: len(data) // 2])
        raise KeyboardInterrupt

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_the_report_groups_failures_and_skips_as_the_functions_that_read_alone():
    from refcheck.report.files import build_report
    from refcheck.report.groups import failure_groups, skip_reasons

    records = [*MIXED, _record("e[1]", "relu", "output", "skipped", seed=5),
               _record("f[1]", "relu", "output", "skipped", seed=6),
               _record("g[1]", "conv1d", "output", "failed", seed=7, diagnosis="stride ignored: in the backward")]
    report = build_report(records, {"options": {"impl": "mine.py"}}, plots=False)
    assert report.groups == failure_groups(records, {"impl": "mine.py"}) and len(report.groups) == 3
    assert report.skips == skip_reasons(records) == [{"layer": "relu", "cases": 2, "reason": "output wrong"}]


def test_reports_from_the_stream_equal_reports_from_the_list(tmp_path):
    records = [r for r in MIXED if r["layer"] != "batch_norm"] * 1
    meta = {"implementation": "x", "options": {}}
    write_reports(tmp_path / "list", records, meta, ["lstm"], plots=True)
    with RecordStream(tmp_path / "stream") as stream:
        for case_id in dict.fromkeys(r["case"] for r in records):
            rows = [r for r in records if r["case"] == case_id]
            stream.add(case_id, rows[0]["layer"], rows)
        write_reports(tmp_path / "stream", stream, meta, ["lstm"], plots=True)
    names = sorted(p.relative_to(tmp_path / "list") for p in (tmp_path / "list").rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(tmp_path / "stream") for p in (tmp_path / "stream").rglob("*") if p.is_file())
    assert any(str(name).endswith(".png") for name in names)
    for name in names:
        assert (tmp_path / "list" / name).read_bytes() == (tmp_path / "stream" / name).read_bytes(), name
    loaded, _ = load_results(tmp_path / "stream")
    assert [r["case"] for r in loaded] == [r["case"] for r in records]


def test_as_source_groups_a_list_by_layer_in_first_seen_order():
    assert [layer for layer, _ in as_source(MIXED).layers()] == ["conv1d", "conv2d", "relu", "batch_norm"]


def test_oracle_cache_entries_round_trip_exactly(tmp_path):
    reference = {"output": np.arange(6, dtype=np.float64).reshape(2, 3), "loss": np.array(2.5),
                 "grad_bias": None, "mask": np.array([True, False]), "index": np.array([[1, 2]], dtype=np.int64)}
    at_dtype = {"output": reference["output"].astype(np.float32), "loss": np.float32(2.5), "grad_bias": None}
    back_reference, back_at = _unpack(_pack(reference, at_dtype))
    assert list(back_reference) == list(reference) and back_reference["grad_bias"] is None
    for name, value in reference.items():
        if value is not None:
            assert back_reference[name].dtype == value.dtype and back_reference[name].shape == value.shape
            np.testing.assert_array_equal(back_reference[name], value)
    assert back_at["loss"].shape == () and back_at["output"].dtype == np.float32
    same_reference, same_at = _unpack(_pack(reference, reference))
    assert same_at is same_reference
    back_reference["output"][0, 0] = 7.0  # writable, like a freshly computed result


def test_a_damaged_cache_entry_is_recomputed(tmp_path):
    from refcheck.execution.sweep import plan_sweep

    case = plan_sweep(layers="relu", quick=True).cases[0]
    cache = OracleCache(tmp_path)
    cache.store(case, {"output": np.ones(3)}, {"output": np.ones(3)})
    assert OracleCache(tmp_path).load(case) is not None
    import sqlite3

    with sqlite3.connect(tmp_path / "oracle.sqlite3") as database:  # cut the entry short
        database.execute("UPDATE entries SET value = substr(value, 1, length(value) - 5)")
    assert OracleCache(tmp_path).load(case) is None


def test_a_cache_file_that_is_not_a_database_only_costs_speed(tmp_path):
    from refcheck.execution.sweep import plan_sweep

    (tmp_path / "oracle.sqlite3").write_bytes(b"not a database" * 100)
    case = plan_sweep(layers="relu", quick=True).cases[0]
    cache = OracleCache(tmp_path, memory_entries=0)
    cache.store(case, {"output": np.ones(3)}, {"output": np.ones(3)})  # no error
    assert cache.load(case) is None and not cache.has_entries()


def test_cache_entries_written_by_one_process_are_read_by_another(tmp_path):
    import subprocess
    import sys

    from refcheck.execution.sweep import plan_sweep

    cases = plan_sweep(layers="relu", quick=True).cases[:3]
    assert not OracleCache(tmp_path).has_entries()
    code = ("import sys\nfrom refcheck.oracle import compute_references\n"
            "from refcheck.execution.sweep import plan_sweep\n"
            "print(len(compute_references(plan_sweep(layers='relu', quick=True).cases[:3], sys.argv[1])))")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, capture_output=True)
    reader = OracleCache(tmp_path)
    assert reader.has_entries()
    entries = reader.load_many(cases)
    assert all(entry is not None for entry in entries) and reader.hits == 3
    from refcheck.oracle import compute_reference

    for case, (reference, _) in zip(cases, entries):
        fresh, _ = compute_reference(case)
        for name, value in fresh.items():
            np.testing.assert_array_equal(reference[name], value)


def test_heatmaps_drawn_before_come_from_the_figures_cache(tmp_path, monkeypatch):
    import refcheck.report.files as files
    from refcheck.report.files import build_report

    records = [_record(f"r[{i}]", "relu", "output", values=kind, dtype=dtype, error_eps=float(i),
                       tolerance_eps=4.0) for i, (kind, dtype) in
               enumerate([("normal", "float32"), ("zeros", "float64"), ("normal", "float64")])]
    drawn = build_report(records, {}, plots=True).pictures
    first = build_report(records, {}, plots=True, figures_cache=tmp_path).pictures
    calls = []
    monkeypatch.setattr(files, "heatmap_figure", lambda *args: calls.append(args) or b"redrawn")
    second = build_report(records, {}, plots=True, figures_cache=tmp_path).pictures
    assert "plots/relu.png" in drawn and drawn == first == second and calls == []
    changed = [{**records[0], "error_eps": 9.0}, *records[1:]]
    assert build_report(changed, {}, plots=True, figures_cache=tmp_path).pictures["plots/relu.png"] == b"redrawn"


def test_figures_drawn_in_the_pool_are_the_figures_drawn_here_and_are_cached(tmp_path):
    from refcheck.report.figure_drawing import DRAWN_HERE, FigureDrawer
    from refcheck.report.heatmaps import heatmap_figure
    from refcheck.report.tables import cases_frame

    frames = {}
    for n in range(DRAWN_HERE + 3):
        records = [_record(f"r[{i}]", "relu", "output", values=kind, dtype=dtype, error_eps=float(i * (n + 1)),
                           tolerance_eps=4.0) for i, (kind, dtype) in
                   enumerate([("normal", "float32"), ("zeros", "float64"), ("normal", "float64")])]
        frames[f"plots/f{n}.png"] = cases_frame(records)
    here, pooled = FigureDrawer(None, processes=1), FigureDrawer(tmp_path, processes=2)
    for name, frame in frames.items():
        here.draw(name, name, "", heatmap_figure, "relu", frame)
        pooled.draw(name, name, frame.to_csv(), heatmap_figure, "relu", frame)
    expected, got = here.results(), pooled.results()
    assert list(got) == list(frames) and got == expected
    assert len(set(got.values())) == len(frames)  # each frame its own figure
    assert len(list(tmp_path.glob("*.png"))) == len(frames)  # those drawn in the pool cached too


def _failing_figure(*_args):
    raise RuntimeError("no fonts")


def test_a_figure_that_cannot_be_drawn_is_left_out_and_the_others_kept(tmp_path, capsys):
    from refcheck.report.figure_drawing import DRAWN_HERE, FigureDrawer
    from refcheck.report.heatmaps import heatmap_figure
    from refcheck.report.tables import cases_frame

    frame = cases_frame([_record("r[0]", "relu", "output", values="normal", dtype="float32", error_eps=1.0,
                                 tolerance_eps=4.0), _record("r[1]", "relu", "output", values="zeros",
                                                              dtype="float64", error_eps=2.0, tolerance_eps=4.0)])
    for processes, count in ((1, 2), (2, DRAWN_HERE + 2)):  # in this process, and in the pool
        drawer = FigureDrawer(tmp_path / str(processes), processes=processes)
        for n in range(count):
            broken = n == 1
            drawer.draw(f"plots/f{n}.png", f"f{n}", "", _failing_figure if broken else heatmap_figure, "relu", frame)
        got = drawer.results()
        assert list(got) == [f"plots/f{n}.png" for n in range(count) if n != 1]
        assert all(png.startswith(b"\x89PNG") for png in got.values())
        assert "plots/f1.png could not be drawn (RuntimeError: no fonts); left out" in capsys.readouterr().err


def test_two_processes_filling_one_cache_at_once_both_succeed(tmp_path):
    import subprocess
    import sys

    from refcheck.execution.sweep import plan_sweep

    code = ("import sys\nfrom refcheck.oracle import compute_references\n"
            "from refcheck.execution.sweep import plan_sweep\n"
            "cases = plan_sweep(layers='relu,sigmoid,linear', quick=True).cases\n"
            "for start in range(0, len(cases), 4):\n"
            "    assert all(a[0] == 'ok' for a in compute_references(cases[start:start + 4], sys.argv[1]))\n"
            "print(len(cases))")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    cases = plan_sweep(layers="relu,sigmoid,linear", quick=True).cases
    assert all(out.strip() == str(len(cases)) for out, _ in outputs)
    reader = OracleCache(tmp_path, memory_entries=0)
    assert all(entry is not None for entry in reader.load_many(cases))


def test_entries_in_memory_stay_found_when_a_chunk_brings_more_from_disk(tmp_path):
    from refcheck.execution.sweep import plan_sweep

    cases = plan_sweep(layers="relu", quick=True).cases[:4]
    writer = OracleCache(tmp_path, memory_entries=0)
    for case in cases:
        writer.store(case, {"output": np.full(2, float(len(case.id)))}, {"output": np.ones(2)})
    reader = OracleCache(tmp_path, memory_entries=2)
    reader.load_many(cases[:2])  # both now in memory, the oldest first in line to go
    entries = reader.load_many([cases[0], cases[2], cases[3]])  # two from disk push two out of memory
    assert all(entry is not None for entry in entries) and reader.misses == 0 and reader.hits == 5


def test_any_damaged_entry_is_recomputed_and_an_unusable_cache_folder_costs_only_speed(tmp_path):
    import json
    import sqlite3

    from refcheck.execution.sweep import plan_sweep

    cases = plan_sweep(layers="relu", quick=True).cases[:3]
    cache = OracleCache(tmp_path, memory_entries=0)
    for case in cases:
        cache.store(case, {"output": np.ones(3)}, {"output": np.ones(3)})
    damaged = [{"reference": None, "at_dtype": None},  # a header without the reference
               {"reference": [["output", "<f8", [10 ** 30]]], "at_dtype": None}]  # a shape no array has
    with sqlite3.connect(tmp_path / "oracle.sqlite3") as database:
        keys = [key for (key,) in database.execute("SELECT key FROM entries ORDER BY rowid")]
        for key, header in zip(keys, damaged):
            text = json.dumps(header).encode()
            database.execute("UPDATE entries SET value = ? WHERE key = ?",
                             (b"RCO1" + len(text).to_bytes(8, "little") + text, key))
    entries = OracleCache(tmp_path).load_many(cases)
    assert [entry is None for entry in entries] == [True, True, False]
    unusable = tmp_path / ("x" * 300)  # a folder name the file system refuses
    for folder in (unusable, tmp_path / "oracle.sqlite3" / "below-a-file"):
        cache = OracleCache(folder)
        cache.store(cases[0], {"output": np.ones(3)}, {"output": np.ones(3)})
        assert OracleCache(folder).load_many(cases) == [None, None, None] and not cache.has_entries()


def test_a_report_that_fails_before_its_figures_stops_their_processes(tmp_path):
    import multiprocessing

    from refcheck.report.files import build_report, write_reports

    records = [_record(f"r[{i}]", layer, "output", values="normal", dtype="float32", error_eps=float(i),
                       tolerance_eps=4.0) for i, layer in enumerate(["relu", "tanh", "sigmoid", "gelu", "elu"] * 2)]
    report = build_report(records, {}, plots=True)  # more than three figures: drawn in the pool
    blocked = tmp_path / "out"
    blocked.write_text("a file where the report folder should be")
    with pytest.raises(OSError):
        write_reports(blocked, records, {}, report=report)
    assert report.pictures == {} and not multiprocessing.active_children()


def test_records_changed_on_disk_behind_the_stream_s_back_stop_the_report(tmp_path):
    """The file is writable by any process running as the user (the code under test too): bytes
    that no longer match what was written are refused, never unpickled."""
    from refcheck.report.stream import StreamChanged

    class _Calls:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))

    with RecordStream(tmp_path) as stream:
        stream.add("relu[a]", "relu", [{"layer": "relu", "case": "relu[a]", "status": "failed"}])
        stream.add("relu[b]", "relu", [{"layer": "relu", "case": "relu[b]", "status": "passed"}])
        payload = pickle.dumps([_Calls()])
        list(stream)  # read once: what was written is on disk now
        with open(stream.path, "r+b") as other_writer:  # what a worker could do, as the same user
            other_writer.write(payload)
        with pytest.raises(StreamChanged, match=r"the records of relu\[a\] were changed on disk"):
            list(stream)
