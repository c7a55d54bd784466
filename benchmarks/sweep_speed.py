"""Benchmark: wall time and cases per second of the default and --quick sweeps of the built-in layers.

Run with ``python benchmarks/sweep_speed.py [--repeat N]``. Each sweep runs as a fresh
``refcheck run`` process, so start-up (imports, the worker pool) is included, as a user sees it.
Targets on a 2-core machine: the default sweep under 60 s, --quick under 10 s.
It also times the built-in layers against torch (forward + backward, one thread) as ratios measured
in the same run: on the sweep's small cases (torch's side includes the numpy <-> torch conversion
and autograd, as the oracle runs it) and on training-sized tensors.
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

    from refcheck.execution.implementation import load_implementation
    from refcheck.cases.inputs import make_inputs, make_upstream_gradient
    from refcheck.oracle import torch_results
    from refcheck.execution.sweep import plan_sweep

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


def large_tensor_ratios() -> list[tuple[str, float]]:
    """Built-in layer time / torch time on training-sized tensors (float32, one thread, best of 3)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from refcheck import layers

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 32, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((64, 32, 3, 3)) / 17).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    conv_hp = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    pool_hp = dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), ceil_mode=False)

    def best(fn) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    def ours_conv():
        out, cache = layers.conv2d_forward(x, w, b, **conv_hp)
        layers.conv2d_backward(np.ones_like(out), cache)

    def torch_conv():
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        F.conv2d(tx, tw, tb, **conv_hp).sum().backward()

    def ours_pool():
        out, cache = layers.max_pool2d_forward(x, **pool_hp)
        layers.max_pool2d_backward(np.ones_like(out), cache)

    def torch_pool():
        tx = torch.tensor(x, requires_grad=True)
        F.max_pool2d(tx, **pool_hp).sum().backward()

    return [("conv2d 8x32x32x32, 64 filters 3x3", best(ours_conv) / best(torch_conv)),
            ("max_pool2d 8x32x32x32, 3x3 stride 2", best(ours_pool) / best(torch_pool))]


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
    print("built-in layer time / torch time on training-sized float32 tensors (forward + backward):")
    for label, ratio in large_tensor_ratios():
        print(f"  {label:<40} {ratio:6.2f}")


if __name__ == "__main__":
    main()
