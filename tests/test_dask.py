"""Sweeps on a real Dask cluster (a scheduler and two workers started as processes on loopback):
the same cases.csv as the local process pool, and hangs and crashes mapped to the same error rows."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
IMPLS = Path(__file__).resolve().parent / "impls"
HOSTILE = Path(__file__).resolve().parent / "impls_hostile"
_DASK = [sys.executable, "-m", "distributed.cli"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """tcp://127.0.0.1:PORT of a scheduler with two single-threaded workers; torn down after."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False", "PYTHONPATH": str(ROOT)}
    log_files = [open(logs / name, "w") for name in ("scheduler.log", "worker0.log", "worker1.log")]
    started = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                 "--port", str(port), "--dashboard-address", ":0"],
                                stdout=log_files[0], stderr=subprocess.STDOUT, env=env)]
    try:
        for index in range(2):
            started.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                             "--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address", ":0",
                                             "--local-directory", str(logs / f"w{index}")],
                                            stdout=log_files[1 + index],
                                            stderr=subprocess.STDOUT, env=env))
        from distributed import Client

        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in log_files:
            log.close()


def _run(tmp_path: Path, name: str, *extra: str) -> pd.DataFrame:
    out = tmp_path / name
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "refcheck", "run", "--no-plots", "--allow-frameworks", "--out", str(out), *extra],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    frame = pd.read_csv(out / "cases.csv", low_memory=False)
    return frame.drop(columns=["duration_s"], errors="ignore")


def test_workers_1_2_and_dask_give_the_same_cases_csv(scheduler, tmp_path):
    layers = ["--impl", str(IMPLS / "planted_conv_stride.py"), "--layers", "conv2d", "--quick"]
    one = _run(tmp_path, "one", *layers, "--workers", "1")
    two = _run(tmp_path, "two", *layers, "--workers", "2")
    dask = _run(tmp_path, "dask", *layers, "--dask", scheduler)
    assert set(one["status"]) >= {"passed", "failed"}  # the planted bug shows, so verdicts are compared
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(one, dask)


@pytest.mark.parametrize("impl", ["broken_hangs.py", "broken_dies.py"])
def test_hangs_and_crashes_on_the_cluster_are_the_same_error_rows(scheduler, tmp_path, impl):
    extra = ["--impl", str(IMPLS / impl), "--timeout", "3"]
    local = _run(tmp_path, "local", *extra)
    dask = _run(tmp_path, "dask", *extra, "--dask", scheduler)
    errors = dask[dask["status"] == "error"]
    assert not errors.empty
    assert errors["reason"].str.startswith("timeout" if "hangs" in impl else "worker died").all()
    # Which hanging case was already running when a layer's first timeout came (full budget) or
    # started after it (shortened budget) depends on scheduling: the kind of each reason must match.
    kind = lambda frame: frame["reason"].fillna("").str.split(":").str[0]  # noqa: E731
    pd.testing.assert_series_equal(kind(local), kind(dask))
    pd.testing.assert_frame_equal(local.drop(columns=["reason"]), dask.drop(columns=["reason"]))


def test_dask_local_starts_its_own_cluster(tmp_path):
    layers = ["--impl", str(IMPLS / "planted_conv_stride.py"), "--layers", "conv2d", "--quick"]
    pd.testing.assert_frame_equal(_run(tmp_path, "pool", *layers), _run(tmp_path, "local", *layers, "--dask", "local"))


def test_an_unreachable_scheduler_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "refcheck", "run", "--layers", "relu", "--out", str(tmp_path),
                             "--dask", f"tcp://127.0.0.1:{_free_port()}"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 2
    assert "cannot reach the scheduler" in result.stdout + result.stderr


def test_code_on_a_local_cluster_cannot_run_anything_in_refcheck_s_process(tmp_path):
    """The scheduler of --dask local is reachable from any task (a Dask worker is its client): it
    runs in a process of its own, not in refcheck's, where the comparison is made."""
    record = tmp_path / "scheduler.pid"
    module = tmp_path / "reaches_the_scheduler.py"
    module.write_text((HOSTILE / "reaches_the_scheduler.py").read_text().replace('_RECORD = ""', f"_RECORD = {str(record)!r}"))
    run = subprocess.Popen([sys.executable, "-m", "refcheck", "run", "--impl", str(module), "--layers", "relu", "--quick",
                            "--no-plots", "--dask", "local", "--out", str(tmp_path / "out")],
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output.decode()[-2000:]
    assert record.exists() and int(record.read_text()) != run.pid
