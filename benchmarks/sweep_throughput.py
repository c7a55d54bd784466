"""Benchmark: the sweep's throughput as a user runs it, its harness overhead, --workers scaling, memory.

Run with ``python benchmarks/sweep_throughput.py [--repeat N] [--out results.json]``. Every figure
comes from ``refcheck run`` started as a fresh process (imports, pools and report files included):

- cases per second of the default sweep with a cold oracle cache (``REFCHECK_CACHE_DIR`` an empty
  folder) and a warm one (the same folder again: torch's results and the unchanged heatmaps are
  reused), with and without plots, and of ``--quick`` the first time (its own cases: torch and the
  heatmaps run) and again (warm);
- the harness overhead of a warm run: the CPU time of the main process (``RUSAGE_CHILDREN`` of the
  run: the main process and what it reaps, not the implementation workers, which are children of the
  fork server) over that plus the workers' time on the cases (the records' ``duration_s``: inputs,
  the implementation, the self-check). A cold run's torch time cannot be told apart from the main
  process's this way (the oracle processes are reaped with it), so no cold figure is given;
- ``--workers 2`` over ``--workers 1`` on a sweep of about 5,000 cases (a case folder whose grids are
  widened), warm;
- the main process's peak resident memory (its own ``ru_maxrss``, written at exit by the small
  launcher below that runs ``refcheck`` in its own process) at 1x and about 10x the default sweep.

Targets on a 2-core machine: >= 1,000 cases/s warm and >= 400 cold; overhead <= 25%; speed-up >= 1.6;
memory at 10x <= 1.5x memory at 1x. The machine's load average is printed with each figure.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _widen_shapes(shapes: list, times: int) -> list:
    """More shapes: each one again with its first dimension grown by 1, 2, ... (times - 1)."""
    wider = list(shapes)
    for step in range(1, times):
        for shape in shapes:
            if isinstance(shape, list) and shape and isinstance(shape[0], int) and shape[0] > 0:
                grown = [shape[0] + step, *shape[1:]]
                if grown not in wider:
                    wider.append(grown)
    return wider


def widened_case_folder(folder: Path, times: int) -> Path:
    """The built-in case files with grids widened about ``times``-fold: more batch sizes and shapes."""
    from refcheck.cases.spaces import default_cases_dir

    folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(default_cases_dir().glob("*.toml")):
        lines = []
        for layer, table in tomllib.loads(source.read_text()).items():
            grid, vary = dict(table.get("grid", {})), dict(table.get("vary", {}))
            if "batch" in grid or "batch" in vary:
                batches = list(grid.pop("batch", None) or vary.pop("batch"))
                start = max(batches) + 1
                grid["batch"] = batches + [start + i for i in range(times - len(batches))]
            else:
                for key in ("input_shape", "batch_shape"):
                    if key in grid:
                        grid[key] = _widen_shapes(grid[key], times)
                        break
                    if key in vary:
                        grid[key] = _widen_shapes(vary.pop(key), times)
                        break
            lines.append(f"[{layer}]")
            if "pairwise" in table:
                lines.append(f"pairwise = {_toml_value(table['pairwise'])}")
            for name, values in (("grid", grid), ("vary", vary), ("tolerance", table.get("tolerance", {}))):
                if values:
                    lines.append(f"[{layer}.{name}]")
                    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
            lines.append("")
        (folder / source.name).write_text("\n".join(lines))
    return folder


# `python -m refcheck ARGS` whose process writes its own peak resident memory (KiB) when it exits.
_LAUNCHER = """
import atexit, resource, runpy, sys
target = sys.argv.pop(1)
atexit.register(lambda: open(target, "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
sys.argv[0] = "refcheck"
runpy.run_module("refcheck", run_name="__main__", alter_sys=True)
"""


def run_sweep(args: list[str], cache: Path, out: Path) -> dict[str, Any]:
    """One ``refcheck run`` process: wall and process-tree CPU seconds, cases, worker seconds, peak RSS."""
    env = {**os.environ, "REFCHECK_CACHE_DIR": str(cache),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _LAUNCHER, str(out / "rss.txt"), "run", "--out", str(out / "report"),
                             *args],
                            capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        raise SystemExit(f"refcheck run {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}"
                         f"{result.stderr[-3000:]}")
    import pandas as pd

    frame = pd.read_csv(out / "report" / "cases.csv", usecols=["case", "duration_s"])
    per_case = frame.groupby("case", sort=False)["duration_s"].first()
    rss = out / "rss.txt"
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "cases": int(per_case.size), "worker_case_s": float(per_case.sum()),
            "parent_peak_mib": float(rss.read_text()) / 1024 if rss.is_file() else float("nan"),
            "load_average": load}


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2, help="rounds of each measurement (default 2)")
    parser.add_argument("--out", default=None, help="write the results as JSON to this path")
    parser.add_argument("--skip-scale", action="store_true", help="only the default sweep (no 5,000 or 10x sweeps)")
    parser.add_argument("--table", metavar="FILE", help="print the table of a saved run (its JSON) and stop")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(Path(args.table).read_text())
        print_summary(saved, skip_scale="10x" not in saved["rounds"])
        return
    results: dict[str, Any] = {"cpus": os.cpu_count(), "repeat": args.repeat, "rounds": {}}
    rows = results["rounds"]
    with tempfile.TemporaryDirectory(prefix="refcheck-bench-") as scratch:
        base = Path(scratch)
        folders = {}
        shared = base / "cache-scaled"
        if not args.skip_scale:
            folders["5000"] = widened_case_folder(base / "cases-5000", 2)
            folders["10x"] = widened_case_folder(base / "cases-10x", 10)
        for round_ in range(args.repeat):
            cache = base / f"cache-{round_}"  # empty: the first run is cold
            plan = [("cold", []), ("warm", []), ("warm --no-plots", ["--no-plots"]), ("quick, first", ["--quick"]),
                    ("quick", ["--quick"]), ("quick --workers 0", ["--quick", "--workers", "0"])]
            scale_plan = []
            if not args.skip_scale:
                scale_plan = [("5000 --workers 1", ["--cases", str(folders["5000"]), "--no-plots", "--workers", "1"]),
                              ("5000 --workers 2", ["--cases", str(folders["5000"]), "--no-plots", "--workers", "2"]),
                              ("10x", ["--cases", str(folders["10x"]), "--no-plots"])]  # cold in round 1
            if not args.skip_scale and round_ == 0:  # the widened sweeps share one cache, filled once for 5,000
                run_sweep(["--cases", str(folders["5000"]), "--no-plots"], shared, base / "fill-5000")
            for name, extra in plan + scale_plan:
                row = run_sweep(extra, shared if (name, extra) in scale_plan else cache,
                                base / f"{name.replace(' ', '_')}-{round_}")
                rows.setdefault(name, []).append(row)
                print(f"round {round_ + 1} {name:<20} {row['cases']:>6} cases {row['wall_s']:7.2f} s "
                      f"{row['cases'] / row['wall_s']:7.0f} cases/s  cpu {row['cpu_s']:6.1f} s  "
                      f"workers {row['worker_case_s']:6.1f} s  parent peak {row['parent_peak_mib']:6.0f} MiB  "
                      f"load {row['load_average']:.2f}", flush=True)
    print_summary(results, args.skip_scale)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


def print_summary(results: dict[str, Any], skip_scale: bool) -> None:
    """The table of figures (also: ``--table FILE.json`` prints it again from a saved run)."""
    rows = results["rounds"]
    summary = summarise(rows, skip_scale=skip_scale)
    results["summary"] = summary
    print()
    print(f"{'figure':<50} {'median':>10} {'rounds':>24} {'target':>10}")
    for name, (value, each, target) in summary.items():
        print(f"{name:<50} {value:>10.2f} {', '.join(f'{v:.2f}' for v in each):>24} {target:>10}")


def summarise(rows: dict[str, list[dict[str, Any]]], skip_scale: bool) -> dict[str, tuple[float, list[float], str]]:
    """Each figure: (median over rounds, the rounds' values, target)."""
    def per_round(fn) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
        values = [fn(i) for i in range(len(rows["warm"]))]
        return statistics.median(values), values

    figures: dict[str, tuple[float, list[float], str]] = {}

    def rate(name: str, i: int) -> float:
        return rows[name][i]["cases"] / rows[name][i]["wall_s"]

    figures["default sweep, cold cache (cases/s)"] = (*per_round(lambda i: rate("cold", i)), ">= 400")
    figures["default sweep, warm cache (cases/s)"] = (*per_round(lambda i: rate("warm", i)), ">= 1000")
    figures["default sweep, warm, --no-plots (cases/s)"] = (*per_round(lambda i: rate("warm --no-plots", i)), "")
    figures["--quick, first run in the cache (cases/s)"] = (*per_round(lambda i: rate("quick, first", i)), "")
    figures["--quick, warm (cases/s)"] = (*per_round(lambda i: rate("quick", i)), "")
    figures["--quick --workers 0, warm (cases/s)"] = (*per_round(lambda i: rate("quick --workers 0", i)), "")

    # The process-tree CPU (cpu_s) holds the main process and the oracle processes it reaps, not the
    # implementation workers (children of the fork server): their time is the records' duration_s.
    def overhead(name: str, i: int) -> float:
        row = rows[name][i]
        return row["cpu_s"] / (row["cpu_s"] + row["worker_case_s"])

    figures["harness overhead, warm (share of CPU)"] = (*per_round(lambda i: overhead("warm", i)), "<= 0.25")
    figures["harness overhead, warm, --no-plots (share of CPU)"] = (
        *per_round(lambda i: overhead("warm --no-plots", i)), "<= 0.25")
    if not skip_scale:
        figures["--workers 2 / --workers 1, ~5,000 cases"] = (
            *per_round(lambda i: rows["5000 --workers 1"][i]["wall_s"] / rows["5000 --workers 2"][i]["wall_s"]),
            ">= 1.6")
        figures["parent peak memory, 1x (MiB)"] = (*per_round(lambda i: rows["warm --no-plots"][i]["parent_peak_mib"]), "")
        figures["parent peak memory, 10x (MiB)"] = (*per_round(lambda i: rows["10x"][i]["parent_peak_mib"]), "")
        figures["parent peak memory, 10x / 1x"] = (
            *per_round(lambda i: rows["10x"][i]["parent_peak_mib"] / rows["warm --no-plots"][i]["parent_peak_mib"]),
            "<= 1.5")
        figures["cases in the 5,000 sweep"] = (*per_round(lambda i: rows["5000 --workers 1"][i]["cases"]), "")
        figures["cases in the 10x sweep"] = (*per_round(lambda i: rows["10x"][i]["cases"]), "")
    return figures


if __name__ == "__main__":
    main()
