"""Benchmark: built-in numpy layers against torch, forward + backward, on training-sized tensors.

For every layer family it prints (and with ``--out PATH`` writes as JSON) the ratio

    time(built-in forward + backward) / time(torch forward + backward)

at float32 and float64, with numpy's BLAS and torch both limited to 1 and then 2 threads. Each ratio
is the MEDIAN over interleaved rounds (numpy, torch, numpy, torch, ...), so that a burst of load from
other processes on a shared machine hits both sides alike. torch's side starts from tensors that
already exist (no numpy <-> torch conversion) and uses ``torch.autograd.grad`` with the same random
upstream gradient.

For conv2d it also gives a floor: the time of the layer's three matrix products alone (forward,
grad_weight, grad_input, per group), as plain numpy matmuls of preallocated matrices, over torch's
time. No numpy conv2d built on these GEMMs can have a ratio below its floor.

It also reports which fraction of numpy's GEMM peak the conv2d at the "large" size reaches:
``flops(conv forward + backward) / time / peak``, with the peak measured by a plain float32 matmul of
comparable size in the same run and at the same thread count. conv2d forward, grad_weight and
grad_input each cost ``2 * N * F * OH * OW * (C / groups) * kh * kw`` flops.

OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE at start-up (some machines set them for older
OpenBLAS builds; they can select slower kernels than the CPU supports). This script does not change
them: it reports them and the kernel OpenBLAS runs. The README's figures come from
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/layers_vs_torch.py`` (both unset for
this command alone).

Usage: ``python benchmarks/layers_vs_torch.py [--rounds R] [--quick] [--out PATH]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_info, threadpool_limits

from refcheck import layers

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class Bench:
    """One benchmark: two callables that each run forward + backward once."""

    family: str
    label: str
    ours: Callable[[], object]
    theirs: Callable[[], object]
    floor: Callable[[], object] | None = None  # conv2d: its three GEMMs alone, as plain matmuls


def _tensors(*arrays: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]


def conv_bench(label: str, rng: np.random.Generator, dtype: type, n: int, c: int, size: int, f: int,
               k: int, stride: int, padding: int, dilation: int, groups: int) -> tuple[Bench, float]:
    """A conv2d benchmark and its forward + backward flop count."""
    x = rng.standard_normal((n, c, size, size)).astype(dtype)
    w = (rng.standard_normal((f, c // groups, k, k)) / np.sqrt(c // groups * k * k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    hp = {"stride": (stride, stride), "padding": (padding, padding), "dilation": (dilation, dilation),
              "groups": groups}
    out, _ = layers.conv2d_forward(x, w, b, **hp)
    dout = rng.standard_normal(out.shape).astype(dtype)
    tx, tw, tb = _tensors(x, w, b)
    tdout = torch.from_numpy(dout)

    def ours():
        _, cache = layers.conv2d_forward(x, w, b, **hp)
        return layers.conv2d_backward(dout, cache)

    def theirs():
        return torch.autograd.grad(F.conv2d(tx, tw, tb, **hp), (tx, tw, tb), tdout)

    # The floor: the layer's three matrix products (forward, grad_weight, grad_input), per group, as
    # plain matmuls of preallocated matrices; no window copies, no layouts, nothing else.
    # grad_input by whichever GEMM is quicker here: the kernel's transpose times dout (refcheck's
    # strided path), or with unit stride the full convolution's own GEMM (the rotated kernel times
    # the windows of dout, refcheck's unit-stride path).
    fg, cg, kk, p = f // groups, c // groups, (c // groups) * k * k, out.shape[0] * out.shape[2] * out.shape[3]
    kernel, windows, gradient = (rng.standard_normal(shape).astype(dtype)
                                 for shape in ((groups, fg, kk), (groups, kk, p), (groups, fg, p)))
    kernel_t = np.ascontiguousarray(kernel.transpose(0, 2, 1))
    choices = [lambda: kernel_t @ gradient]
    if stride == 1:
        rotated = rng.standard_normal((groups, cg, fg * k * k)).astype(dtype)
        dout_windows = rng.standard_normal((groups, fg * k * k, n * size * size)).astype(dtype)
        choices.append(lambda: rotated @ dout_windows)
    input_gemm = min(choices, key=lambda gemm: statistics.median(_once(gemm, 1) for _ in range(5)))

    def floor():
        return kernel @ windows, gradient @ windows.transpose(0, 2, 1), input_gemm()

    flops = 3 * 2 * out.size * (c // groups) * k * k
    return Bench("conv2d", label, ours, theirs, floor), flops


def unary_bench(family: str, label: str, rng: np.random.Generator, dtype: type, shape: tuple[int, ...],
                ours_forward: Callable, ours_backward: Callable, torch_fn: Callable,
                **hp: object) -> Bench:
    """A one-input layer (pooling, activation) with hyperparameters passed to both sides."""
    x = rng.standard_normal(shape).astype(dtype)
    out, _ = ours_forward(x, **hp)
    dout = rng.standard_normal(out.shape).astype(dtype)
    (tx,) = _tensors(x)
    tdout = torch.from_numpy(dout)

    def ours():
        _, cache = ours_forward(x, **hp)
        return ours_backward(dout, cache)

    def theirs():
        return torch.autograd.grad(torch_fn(tx, **hp), (tx,), tdout)

    return Bench(family, label, ours, theirs)


def build(dtype: type, quick: bool) -> tuple[list[Bench], float]:
    """All benchmarks at one dtype, and the flop count of the large conv2d."""
    rng = np.random.default_rng(0)
    benches: list[Bench] = []
    convs = [
        ("medium N8 C16 32x32 F32 k3 p1", 8, 16, 32, 32, 3, 1, 1, 1, 1),
        ("large N16 C64 32x32 F64 k3 p1", 16, 64, 32, 64, 3, 1, 1, 1, 1),
        ("strided N8 C32 64x64 F32 k5 s2 p2", 8, 32, 64, 32, 5, 2, 2, 1, 1),
        ("dilated N8 C32 32x32 F32 k3 p2 d2", 8, 32, 32, 32, 3, 1, 2, 2, 1),
        ("depthwise N8 C32 32x32 g32 k3 p1", 8, 32, 32, 32, 3, 1, 1, 1, 32),
    ]
    large_flops = 0.0
    for label, *geometry in convs:
        bench, flops = conv_bench(label, rng, dtype, *geometry)
        benches.append(bench)
        if label.startswith("large"):
            large_flops = flops
    act = (16, 64, 32, 32)
    pools = [
        ("max_pool2d", "k3 s2 p1", layers.max_pool2d_forward, layers.max_pool2d_backward, F.max_pool2d,
         {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1), "dilation": (1, 1), "ceil_mode": False}),
        ("max_pool2d", "k2 s2", layers.max_pool2d_forward, layers.max_pool2d_backward, F.max_pool2d,
         {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0), "dilation": (1, 1), "ceil_mode": False}),
        ("avg_pool2d", "k3 s2 p1", layers.avg_pool2d_forward, layers.avg_pool2d_backward, F.avg_pool2d,
         {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1), "ceil_mode": False, "count_include_pad": True,
              "divisor_override": None}),
        ("avg_pool2d", "k2 s2", layers.avg_pool2d_forward, layers.avg_pool2d_backward, F.avg_pool2d,
         {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False, "count_include_pad": True,
              "divisor_override": None}),
        ("adaptive_avg_pool2d", "-> 7x7", layers.adaptive_avg_pool2d_forward,
         layers.adaptive_avg_pool2d_backward, F.adaptive_avg_pool2d, {"output_size": (7, 7)}),
        ("adaptive_avg_pool2d", "-> 1x1", layers.adaptive_avg_pool2d_forward,
         layers.adaptive_avg_pool2d_backward, F.adaptive_avg_pool2d, {"output_size": (1, 1)}),
        ("adaptive_max_pool2d", "-> 7x7", layers.adaptive_max_pool2d_forward,
         layers.adaptive_max_pool2d_backward, F.adaptive_max_pool2d, {"output_size": (7, 7)}),
        ("adaptive_max_pool2d", "-> 8x8", layers.adaptive_max_pool2d_forward,
         layers.adaptive_max_pool2d_backward, F.adaptive_max_pool2d, {"output_size": (8, 8)}),
    ]
    for family, what, forward, backward, torch_fn, hp in pools:
        benches.append(unary_bench(family, f"N16 C64 32x32 {what}", rng, dtype, act, forward, backward,
                                   torch_fn, **hp))
    for name, torch_fn in (("relu", F.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        benches.append(unary_bench(name, "N16 C64 32x32", rng, dtype, act, getattr(layers, f"{name}_forward"),
                                   getattr(layers, f"{name}_backward"), torch_fn))
    benches.append(unary_bench("softmax", "256x1000 dim=1", rng, dtype, (256, 1000), layers.softmax_forward,
                               layers.softmax_backward, F.softmax, dim=1))

    x = rng.standard_normal((256, 1024)).astype(dtype)
    w = (rng.standard_normal((1024, 1024)) / 32).astype(dtype)
    b = rng.standard_normal(1024).astype(dtype)
    dout = rng.standard_normal((256, 1024)).astype(dtype)
    tx, tw, tb = _tensors(x, w, b)
    tdout = torch.from_numpy(dout)

    def linear_ours():
        _, cache = layers.linear_forward(x, w, b)
        return layers.linear_backward(dout, cache)

    def linear_theirs():
        return torch.autograd.grad(F.linear(tx, tw, tb), (tx, tw, tb), tdout)

    benches.append(Bench("linear", "256x1024 -> 1024", linear_ours, linear_theirs))

    logits = rng.standard_normal((256, 1000)).astype(dtype)
    target = rng.integers(0, 1000, 256)
    (tlogits,) = _tensors(logits)
    ttarget = torch.from_numpy(target)
    dloss = np.asarray(rng.standard_normal(), dtype=dtype)
    tdloss = torch.from_numpy(dloss)

    def ce_ours():
        _, cache = layers.cross_entropy_forward(logits, target, reduction="mean")
        return layers.cross_entropy_backward(dloss, cache)

    def ce_theirs():
        return torch.autograd.grad(F.cross_entropy(tlogits, ttarget, reduction="mean"), (tlogits,), tdloss)

    benches.append(Bench("cross_entropy", "256x1000 mean", ce_ours, ce_theirs))
    if quick:  # conv2d at three sizes, the first size of every other family, no sigmoid/tanh
        seen: set[str] = set()
        kept = []
        for bench in benches:
            if bench.family == "conv2d":
                keep = bench.label.split()[0] in ("medium", "large", "depthwise")
            else:
                keep = bench.family not in seen and bench.family not in ("sigmoid", "tanh")
            seen.add(bench.family)
            if keep:
                kept.append(bench)
        benches = kept
    return benches, large_flops


def _once(fn: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def measure(bench: Bench, rounds: int) -> dict[str, float]:
    """Median numpy time, torch time and ratio over interleaved rounds."""
    bench.ours()
    bench.theirs()
    # Repeat cheap calls inside a round so that one round takes at least ~5 ms on each side.
    probe = min(_once(bench.ours, 1), _once(bench.theirs, 1))
    repeat = max(1, int(0.005 / max(probe, 1e-6)))
    ours, theirs, ratios = [], [], []
    for _ in range(rounds):
        a = _once(bench.ours, repeat)
        t = _once(bench.theirs, repeat)
        ours.append(a)
        theirs.append(t)
        ratios.append(a / t)
    result = {"numpy_s": statistics.median(ours), "torch_s": statistics.median(theirs),
              "ratio": statistics.median(ratios),
              "ratio_min": min(ratios), "ratio_max": max(ratios)}
    if bench.floor is not None:  # the GEMMs alone over torch's whole forward + backward
        bench.floor()
        floors = []
        for _ in range(rounds):
            floors.append(_once(bench.floor, repeat) / _once(bench.theirs, repeat))
        result["gemm_floor_ratio"] = statistics.median(floors)
    return result


def gemm_peak(rounds: int) -> float:
    """float32 flop/s of one plain numpy matmul as large as the large conv2d's GEMMs."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((64, 576)).astype(np.float32)
    b = rng.standard_normal((576, 16384)).astype(np.float32)
    a @ b
    times = [_once(lambda: a @ b, 3) for _ in range(rounds)]
    return 2 * 64 * 576 * 16384 / min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per ratio (default 11, quick 5)")
    parser.add_argument("--quick", action="store_true", help="fewer layers and rounds")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--layers", default=None, help="comma-separated layer families to run (default all)")
    parser.add_argument("--out", default=None, help="write the results as JSON to this path")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 11)
    env = {name: os.environ.get(name) for name in BLAS_ENV}
    blas = [{k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for info in threadpool_info()]
    print(f"numpy {np.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus")
    print("BLAS environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    print(f"numpy BLAS: {blas}")
    if env["OPENBLAS_CORETYPE"]:
        print(f"note: OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']} chooses OpenBLAS's kernels; for the CPU's own, run "
              "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/layers_vs_torch.py")
    print(f"ratio = numpy time / torch time, forward + backward, median of {rounds} interleaved rounds "
          "[min-max over rounds]; floor (conv2d) = the layer's three GEMMs alone, as plain numpy matmuls, "
          "over torch's time")
    results = {"numpy": np.__version__, "torch": torch.__version__, "env": env, "blas": blas,
               "rounds": rounds, "rows": [], "conv2d_large_gemm_fraction": {}}
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            peak = gemm_peak(rounds)
            print(f"\n== {threads} thread(s); numpy float32 GEMM peak {peak / 1e9:.1f} GFLOP/s")
            print(f"{'layer':<20} {'size':<36} {'float32':>22} {'float64':>22} {'floor32':>8} {'floor64':>8}")
            per_dtype = {}
            for dtype in (np.float32, np.float64):
                benches, large_flops = build(dtype, args.quick)
                if args.layers:
                    benches = [bb for bb in benches if bb.family in args.layers.split(",")]
                per_dtype[dtype] = [(bench, measure(bench, rounds)) for bench in benches]
                if dtype is np.float32 and large_flops and any(
                        bench.label.startswith("large") for bench in benches):
                    large = next(m for bench, m in per_dtype[dtype] if bench.label.startswith("large"))
                    fraction = large_flops / large["numpy_s"] / peak
                    results["conv2d_large_gemm_fraction"][str(threads)] = {
                        "fraction": fraction, "peak_flops": peak, "conv_flops": large_flops,
                        "numpy_s": large["numpy_s"]}
            for (bench, m32), (_, m64) in zip(per_dtype[np.float32], per_dtype[np.float64]):
                cells = [f"{m['ratio']:5.2f} [{m['ratio_min']:.2f}-{m['ratio_max']:.2f}]" for m in (m32, m64)]
                floors = [f"{m['gemm_floor_ratio']:.2f}" if "gemm_floor_ratio" in m else "" for m in (m32, m64)]
                print(f"{bench.family:<20} {bench.label:<36} {cells[0]:>22} {cells[1]:>22} {floors[0]:>8} {floors[1]:>8}")
                for dtype, m in ((np.float32, m32), (np.float64, m64)):
                    results["rows"].append({"threads": threads, "family": bench.family, "size": bench.label,
                                            "dtype": np.dtype(dtype).name, **m})
            fraction = results["conv2d_large_gemm_fraction"].get(str(threads), {}).get("fraction", float("nan"))
            print(f"conv2d large float32 fwd+bwd reaches {100 * fraction:.0f}% of the numpy GEMM peak")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
