"""Report tables and files from hand-made records (independent of any implementation)."""
from __future__ import annotations

import json
import math

import pandas as pd

from refcheck.report import case_statuses, cases_frame, summary_frame, write_reports


def record(case, tensor, status, error=1.0, torch_error=0.5, diagnosis=None, layer="conv2d"):
    return {"layer": layer, "case": case, "tensor": tensor, "dtype": "float32", "status": status,
            "reason": "" if status == "passed" else f"{tensor} went wrong", "error_eps": error,
            "torch_error_eps": torch_error, "tolerance_eps": 64.0, "diagnosis": diagnosis, "stride": "(2, 1)",
            "input_shape": "(1, 2, 5, 5)"}


RECORDS = [
    record("conv2d[a]", "output", "passed", 2.0),
    record("conv2d[a]", "grad_input", "failed", 900.0, diagnosis="stride ignored"),
    record("conv2d[b]", "output", "passed", 3.0),
    record("conv2d[b]", "grad_input", "failed", 500.0, diagnosis="stride ignored"),
    record("conv2d[c]", "output", "error", math.nan),
    record("relu[x]", "output", "skipped", math.nan, layer="relu"),
]


def test_a_case_takes_its_worst_status():
    statuses = case_statuses(cases_frame(RECORDS)).set_index("case")["status"]
    assert statuses.to_dict() == {"conv2d[a]": "failed", "conv2d[b]": "failed", "conv2d[c]": "error",
                                  "relu[x]": "skipped"}


def test_summary_counts_worst_errors_and_the_main_diagnosis():
    summary = summary_frame(cases_frame(RECORDS), not_implemented=["linear"]).set_index("layer")
    conv = summary.loc["conv2d"]
    assert (conv["cases"], conv["passed"], conv["failed"], conv["error"]) == (3, 0, 2, 1)
    assert conv["grad_input_eps"] == 900.0 and conv["grad_input_ratio"] == 900.0 / 64.0
    # conv2d[c]'s output raised: an error outranks any numeric error of that tensor
    assert conv["output_kind"] == "error" and conv["output_failing"]
    assert conv["diagnosis"] == "stride ignored (2 cases)"
    assert summary.loc["relu", "skipped"] == 1
    assert summary.loc["linear", "note"] == "not implemented"


def test_columns_start_with_the_documented_ones():
    frame = cases_frame(RECORDS)
    assert list(frame.columns[:6]) == ["layer", "case", "tensor", "dtype", "status", "reason"]
    assert frame.columns.get_loc("stride") < frame.columns.get_loc("input_shape")


def test_report_files_are_complete_strict_json_and_leave_no_temporaries(tmp_path):
    paths = write_reports(tmp_path, RECORDS, {"implementation": "x", "totals": "4 cases"}, ["linear"])
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(paths)  # no temporaries left beside them
    assert "plots/overview.png" in paths  # no heatmap: no parameter varies in these records
    payload = json.loads((tmp_path / "results.json").read_text())  # strict: NaN became null
    assert payload["records"][4]["error_eps"] is None
    assert len(pd.read_csv(tmp_path / "cases.csv")) == len(RECORDS)
    summary = (tmp_path / "summary.md").read_text()
    assert "stride ignored (2 cases)" in summary and "Layers not implemented: linear." in summary
    assert 'tr class="failing"' in (tmp_path / "summary.html").read_text()


def test_the_overview_is_drawn_when_an_error_is_infinite():
    """A finite reference and an infinite result make an infinite error ratio (and torch's own
    can be too): the overview draws it at the axis' edge instead of being left out."""
    from refcheck.report.plots import overview_figure

    records = [record("relu[a]", "output", "failed", math.inf, torch_error=math.inf, layer="relu"),
               record("relu[b]", "output", "passed", 2.0, layer="relu")]
    png = overview_figure(summary_frame(cases_frame(records)))
    assert png is not None and png.startswith(b"\x89PNG")
