"""Hostile, under --dask: a relu whose forward finds the Dask scheduler (a port its ancestor Dask
worker holds a connection to), connects to it as a client and asks which process it runs in,
writing that pid to the file named by _RECORD (a test sets it). Run there, code could rewrite
that process: with refcheck's own comparison in it, a wrong relu would pass."""
import os

import numpy as np

_RECORD = ""


def _ancestors() -> list[int]:
    pid, chain = os.getpid(), []
    while pid > 1:
        try:
            with open(f"/proc/{pid}/status") as status:
                pid = int(next(line for line in status if line.startswith("PPid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            break
        chain.append(pid)
    return chain


def _scheduler_ports() -> list[int]:
    sockets = set()
    for pid in _ancestors():
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    sockets.add(target[8:-1])
        except OSError:
            continue
    listening, connected = set(), set()
    with open("/proc/net/tcp") as table:
        next(table)
        for row in map(str.split, table):
            if row[3] == "0A":
                listening.add(int(row[1].split(":")[1], 16))
            elif row[3] == "01" and row[9] in sockets:
                connected.add(int(row[2].split(":")[1], 16))
    return sorted(connected & listening)


def relu_forward(x):
    if _RECORD and not os.path.exists(_RECORD):
        from distributed import Client

        for port in _scheduler_ports():
            try:
                client = Client(f"tcp://127.0.0.1:{port}", timeout="3s", set_as_default=False)
                pid = client.run_on_scheduler(os.getpid)
                client.close()
            except Exception:  # noqa: BLE001 - not the scheduler
                continue
            with open(_RECORD, "w") as record:
                record.write(str(pid))
            break
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
