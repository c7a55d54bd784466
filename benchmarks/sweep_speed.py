"""Benchmark: wall time and cases per second of the default and --quick sweeps of the built-in layers.

Run with ``python benchmarks/sweep_speed.py [--repeat N]``. Each sweep runs as a fresh
``refcheck run`` process, so start-up (imports, the worker pool) is included, as a user sees it.
Targets on a 2-core machine: the default sweep under 60 s, --quick under 10 s.
It also times the built-in layers against torch on the same cases (forward + backward, one thread),
as a ratio measured in the same run.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def time_sweep(extra: list[str], repeat: int) -> tuple[float, int]:
    times, cases = [], 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "refcheck", "run", "--out", out, *extra],
                                    capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            if result.returncode != 0:
                raise SystemExit(f"refcheck run {' '.join(extra)} exited {result.returncode}:\n{result.stdout[-2000:]}")
            import pandas as pd

            cases = pd.read_csv(f"{out}/cases.csv")["case"].nunique()
    return statistics.median(times), cases


def layer_speed_ratios() -> list[tuple[str, float]]:
    """Median time of the built-in layer over torch's, forward + backward, per layer."""
    import numpy as np
    import torch

    from refcheck.implementation import load_implementation
    from refcheck.inputs import make_inputs, make_upstream_gradient
    from refcheck.oracle import torch_results
    from refcheck.sweep import plan_sweep

    torch.set_num_threads(1)
    layers = load_implementation(None).layers
    by_layer: dict[str, list[float]] = {}
    for case in plan_sweep(quick=True).cases:
        spec_tensors = make_inputs(case)
        functions = layers[case.layer]
        hp = case.hparam_map
        out, _ = functions.forward(*spec_tensors.values(), **hp)
        dout = make_upstream_gradient(case, np.shape(out))
        started = time.perf_counter()
        for _ in range(5):
            out, cache = functions.forward(*spec_tensors.values(), **hp)
            functions.backward(dout, cache)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(5):
            torch_results(case.layer, spec_tensors, hp, dout, case.dtype)
        theirs = time.perf_counter() - started
        by_layer.setdefault(case.layer, []).append(ours / theirs)
    return [(layer, statistics.median(r)) for layer, r in by_layer.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for label, extra in (("default", []), ("--quick", ["--quick"])):
        seconds, cases = time_sweep(extra, args.repeat)
        print(f"{label:>8} sweep: {cases} cases in {seconds:.1f} s wall = {cases / seconds:.0f} cases/s")
    print("built-in layer time / torch time (forward + backward, median over the quick cases):")
    for layer, ratio in layer_speed_ratios():
        print(f"  {layer:<34} {ratio:6.2f}")


if __name__ == "__main__":
    main()
