"""What the implementation's workers send back is read without running anything of theirs.

The oracle for the end-to-end test is the file system: a hostile module makes its worker send a
pickle that would create a directory in whichever process unpickles it.
"""
from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refcheck.adapters.contract import ForeignResult
from refcheck.cases import Case
from refcheck.cli import main
from refcheck.execution.safe_channel import RefusedMessage, safe_loads

HOSTILE = Path(__file__).parent / "impls_hostile"


class _Calls:
    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("value", [
    {"status": "ran", "results": {"output": np.arange(6.0).reshape(2, 3), "grad_x": None},
     "mutated": ["forward mutated its input 'x' in place"], "selfcheck": {"grad_x": 1e-9}, "user_seconds": 0.1},
    [np.float32(1.5), np.int64(3), np.array([1 + 2j]), np.zeros((0, 3), np.float16), True, None, (1, "a")],
    ForeignResult("list"), ValueError("raised in the worker"), {1, 2}, frozenset({3}), b"bytes",
], ids=["raw result", "numbers and arrays", "foreign result", "exception", "set", "frozenset", "bytes"])
def test_what_the_worker_protocol_sends_reads_back_unchanged(value):
    read = safe_loads(pickle.dumps(value))
    if isinstance(value, dict):
        np.testing.assert_array_equal(read["results"]["output"], value["results"]["output"])
        assert {k: v for k, v in read.items() if k != "results"} == {k: v for k, v in value.items() if k != "results"}
    elif isinstance(value, list):
        assert [type(v) for v in read] == [type(v) for v in value]
        assert all(np.array_equal(a, b) for a, b in zip(read, value))
    elif isinstance(value, BaseException):
        assert type(read) is ValueError and read.args == value.args
    else:
        assert read == value


def test_a_plan_s_cases_read_back():
    from refcheck.execution.sweep import plan_sweep

    cases = plan_sweep(layers="relu", quick=True).cases
    assert safe_loads(pickle.dumps(cases)) == cases and isinstance(cases[0], Case)


@pytest.mark.parametrize("payload, refused", [
    (_Calls(os.system, "true"), "posix.system"),
    (_Calls(shutil.rmtree, "/nonexistent"), "shutil.rmtree"),
    (_Calls(eval, "1"), "builtins.eval"),
    (_Calls(getattr, ForeignResult("list"), "type_name"), "builtins.getattr"),
    (_Calls(pickle.loads, b""), "_pickle.loads"),
    (_Calls(main, ["run"]), "refcheck.cli.main"),  # refcheck's own functions are not record types
])
def test_a_message_that_would_call_a_function_is_refused(payload, refused):
    with pytest.raises(RefusedMessage, match=refused):
        safe_loads(pickle.dumps({"results": {"output": payload}}))


def test_a_hostile_worker_s_pickle_runs_nothing_here_and_its_cases_are_errors(tmp_path):
    module = tmp_path / "pickle_payload.py"
    shutil.copy(HOSTILE / "pickle_payload.py", module)
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(module), "--layers", "relu", "--quick", "--out", str(out), "--no-plots",
                 "--workers", "1"])
    assert not (tmp_path / "made_by_the_payload").exists()  # nothing of the worker's ran here
    frame = pd.read_csv(out / "cases.csv")
    assert code == 1 and set(frame["status"]) == {"error"}
    assert frame["reason"].str.startswith("refused: the worker running the case sent back something other than "
                                          "plain results (a worker's message would build os.makedirs)").all()


def test_an_exception_pickled_by_tblib_as_in_a_dask_worker_reads_back_without_its_traceback():
    import subprocess
    import sys

    # tblib's pickling support is installed process-wide by distributed: pickle in a process of its own.
    script = ("import pickle, sys, distributed\n"
              "try:\n    raise KeyError('in the worker')\n"
              "except KeyError as error:\n    sys.stdout.buffer.write(pickle.dumps({'error': error}))\n")
    data = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True).stdout
    assert b"tblib" in data
    error = safe_loads(data)["error"]
    assert type(error) is KeyError and error.args == ("in the worker",) and error.__traceback__ is None


def test_a_tblib_payload_cannot_rebuild_anything_but_an_exception():
    import tblib.pickling_support

    # str is a type a message may build, but no exception: tblib's function is not called with it.
    payload = _Calls(tblib.pickling_support.unpickle_exception, str, ("built",), None, None)
    with pytest.raises(RefusedMessage, match="rebuild an exception from type"):
        safe_loads(pickle.dumps(payload))


def test_refcheck_run_s_process_is_shut_to_other_processes_of_the_user():
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_DUMPABLE is Linux's")
    script = ("import ctypes\nfrom refcheck.execution.safe_channel import shut_to_workers\n"
              "assert shut_to_workers()\nprint(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "0"  # PR_GET_DUMPABLE: not dumpable


class _Sized:
    """Pickles as a call of ``kind`` with ``argument``: memory of the sender's choosing if obeyed."""

    def __init__(self, kind, argument):
        self.kind, self.argument = kind, argument

    def __reduce__(self):
        return self.kind, (self.argument,)


@pytest.mark.parametrize("payload", [_Sized(bytearray, 1 << 40), _Sized(bytes, 1 << 40), _Sized(list, range(1 << 40)),
                                     _Sized(int, "not a number")],
                         ids=["bytearray(count)", "bytes(count)", "list(range)", "int raises"])
def test_a_message_that_would_allocate_or_raise_on_reading_is_refused(payload):
    with pytest.raises(RefusedMessage):
        safe_loads(pickle.dumps({"results": {"output": payload}}))


def test_an_array_message_cannot_ask_for_memory_before_its_data():
    from numpy._core.multiarray import _reconstruct

    with pytest.raises(RefusedMessage, match=r"shape \(1099511627776,\)"):
        safe_loads(pickle.dumps(_Calls(_reconstruct, np.ndarray, (1 << 40,), b"b")))
    for array in (np.arange(12.0).reshape(3, 4).T, np.array(3.5, np.float32), np.arange(4, dtype=">f8")):
        for protocol in (4, 5):
            data = pickle.dumps(array, protocol=protocol)
            read, expected = safe_loads(data), pickle.loads(data)
            assert read.dtype == expected.dtype and read.shape == array.shape and np.array_equal(read, array)


@pytest.mark.parametrize("how, reason", [
    ("seconds", "the worker's result for this case cannot be read (its user_seconds is 'fast')"),
    ("results", "the worker's result for this case cannot be read (its results are not a dict"),
    ("status", "the worker's result for this case cannot be read (its status is 'passed')"),
    ("unreadable", "refused: the worker running the case sent back something other than plain results (a "
                   "worker's message could not be read: ValueError"),
])
def test_a_forged_result_is_that_case_s_error_and_the_run_reports_the_rest(tmp_path, how, reason):
    module = tmp_path / "forged_result.py"
    module.write_text((HOSTILE / "forged_result.py").read_text().replace('_HOW = "seconds"', f"_HOW = {how!r}"))
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(module), "--layers", "relu", "--out", str(out), "--no-plots", "--workers", "1",
                 "--timeout", "20"])
    frame = pd.read_csv(out / "cases.csv")
    forged = frame[frame["input_shape"] == "(7,)"]
    if how == "unreadable":
        # An unreadable message costs the pool: the first case a new worker runs loads the module,
        # which forges only the cases after it (that one is run as it is, and passes).
        # A case in flight in a pool that gave up twice cannot be told from the one whose message
        # it was: it is an error saying the pool gave up.
        assert set(forged["status"]) <= {"error", "passed"}
        forged = forged[forged["status"] == "error"]
        forged = forged[~forged["reason"].str.contains("the pool gave up before this task was answered")]
    assert code == 1 and len(forged) and set(forged["status"]) == {"error"}
    assert forged["reason"].str.startswith(reason).all(), forged["reason"].iloc[0]
    assert set(frame.loc[frame["input_shape"] != "(7,)", "status"]) == {"passed"}
    assert (out / "junit.xml").exists() and (out / "summary.md").exists()


def test_the_oracle_s_processes_are_shut_to_the_user_s_other_processes_and_their_messages_run_nothing():
    # An implementation worker (same user) found the oracle's pipes through /proc/<pid>/fd and wrote a
    # message of its own, read here with plain pickle: now the oracle's processes are non-dumpable
    # from their start-up, started before any of the user's code runs beside them, and what comes
    # back from them is read as the workers' messages are.
    from concurrent.futures.process import BrokenProcessPool

    from oracle_probes import dumpable, sends_a_call
    from refcheck.execution.runner import start_oracle
    from refcheck.execution.safe_channel import refused

    oracle = start_oracle(2)
    try:
        assert len(set(oracle.worker_pids())) == 2
        assert [oracle.submit(dumpable).result() for _ in range(4)] == [0, 0, 0, 0]
        with pytest.raises(BrokenProcessPool) as raised:
            oracle.submit(sends_a_call).result()
        assert "would build os.makedirs" in refused(raised.value)
    finally:
        oracle.shutdown(cancel_futures=True)
