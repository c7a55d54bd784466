"""What refcheck guarantees a grader: hostile implementations end as rows, never as a green run.

Each test plants a hostile module (tests/impls_hostile/) and checks the verdict and the exit code
of a real `refcheck run` (worker processes, as a user runs it).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import adapter_skip_source

from refcheck.cli import main

HOSTILE = Path(__file__).parent / "impls_hostile"


def run(tmp_path: Path, impl: str, *args: str) -> tuple[int, pd.DataFrame]:
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(HOSTILE / f"{impl}.py"), "--out", str(out), "--workers", "2", *args])
    frame = pd.read_csv(out / "cases.csv") if (out / "cases.csv").exists() else pd.DataFrame()
    return code, frame


def test_a_stack_walking_cheat_finds_nothing_to_steal(tmp_path):
    code, frame = run(tmp_path, "cheat_stack", "--layers", "conv2d", "--quick")
    assert code == 1
    assert (frame["status"] != "passed").all()


def test_a_gc_scanning_cheat_finds_nothing_to_steal(tmp_path):
    code, frame = run(tmp_path, "cheat_gc", "--layers", "relu")
    assert code == 1
    assert (frame["status"] == "failed").all()


def test_no_reference_array_exists_in_the_implementations_process(tmp_path):
    shutil.copy(HOSTILE / "probe_memory.py", tmp_path / "probe_memory.py")
    probe = tmp_path / "probe_memory.log"
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(tmp_path / "probe_memory.py"), "--layers", "conv2d", "--quick", "--no-selfcheck",
                 "--allow-frameworks",
                 "--out", str(out), "--no-oracle-cache"])
    frame = pd.read_csv(out / "cases.csv")
    assert code == 0 and (frame["status"] == "passed").all()
    counts = [int(line) for line in probe.read_text().split()]
    # One line per call of every case (its forward, a forward on other inputs, its backward); no copy
    # of the answer anywhere.
    assert len(counts) == 3 * frame["case"].nunique()
    assert sum(counts) == 0


def test_an_implementation_that_imports_torch_fails_unless_allowed(tmp_path):
    code, frame = run(tmp_path, "uses_torch", "--layers", "relu")
    assert code == 1
    assert (frame["status"] == "failed").all()
    assert frame["reason"].str.contains("imported torch: refcheck checks from-scratch numpy code").all()
    assert (frame["frameworks"] == "torch").all()
    allowed_code, allowed = run(tmp_path / "allowed", "uses_torch", "--layers", "relu", "--allow-frameworks")
    assert allowed_code == 0
    assert (allowed["status"] == "passed").all()
    assert allowed["reason"].str.contains("passed using torch").all()


def test_exits_and_interrupts_from_the_implementation_are_error_rows(tmp_path):
    code, frame = run(tmp_path, "exits", "--layers", "relu", "--allow-frameworks")
    assert code == 1
    by_shape = {(shape, dtype): group for (shape, dtype), group in frame.groupby(["input_shape", "dtype"])}
    assert by_shape[("(4, 5)", "float32")]["reason"].str.contains("SystemExit").all()
    assert by_shape[("(7,)", "float32")]["reason"].str.contains("KeyboardInterrupt").all()
    assert by_shape[("(2, 3, 4, 4)", "float32")]["reason"].str.contains("GeneratorExit").all()
    assert by_shape[("(2, 3, 4, 4)", "float64")]["reason"].str.contains("worker died: .* exited with code 0").all()
    for key in [("(4, 5)", "float32"), ("(7,)", "float32"), ("(2, 3, 4, 4)", "float32"), ("(2, 3, 4, 4)", "float64")]:
        assert set(by_shape[key]["status"]) == {"error"}
    others = frame[~frame.set_index(["input_shape", "dtype"]).index.isin(list(by_shape)[:0] + [
        ("(4, 5)", "float32"), ("(7,)", "float32"), ("(2, 3, 4, 4)", "float32"), ("(2, 3, 4, 4)", "float64")])]
    assert len(others) > 0 and set(others["status"]) == {"passed"}


def test_a_forward_without_backward_checks_the_output_and_fails_the_gradients(tmp_path):
    code, frame = run(tmp_path, "forward_only", "--layers", "relu")
    assert code == 1
    assert set(frame[frame["tensor"] == "output"]["status"]) == {"passed"}
    gradients = frame[frame["tensor"] == "grad_input"]
    assert set(gradients["status"]) == {"error"}
    assert gradients["reason"].str.contains("no backward: relu_backward is missing").all()
    by_design, only_outputs = run(tmp_path / "by_design", "forward_only", "--layers", "relu", "--forward-only")
    assert by_design == 0
    assert set(only_outputs["tensor"]) == {"output"} and set(only_outputs["status"]) == {"passed"}


def test_a_print_flood_stays_off_the_console_and_is_kept_bounded(tmp_path):
    out = tmp_path / "reports"
    command = [sys.executable, "-m", "refcheck", "run", "--impl", str(HOSTILE / "print_flood.py"), "--layers", "relu",
               "--allow-frameworks",
               "--out", str(out), "--quick"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert len(finished.stdout) + len(finished.stderr) < 20_000
    records = json.loads((out / "results.json").read_text())["records"]
    assert all(len(r["stdout"]) < 10_000 and "bytes left out" in r["stdout"] for r in records)
    assert all(r["stderr"].startswith("eeee") for r in records)


def test_a_memory_bomb_is_an_error_row_naming_the_limit(tmp_path):
    code, frame = run(tmp_path, "memory_bomb", "--layers", "relu", "--memory-limit", "512MB", "--allow-frameworks")
    assert code == 1
    bombed = frame[frame["input_shape"] == "(7,)"]
    assert set(bombed["status"]) == {"error"}
    assert bombed["reason"].str.contains("MemoryError").all()
    assert bombed["reason"].str.contains("memory limit 512 MB per worker").all()
    assert set(frame[frame["input_shape"] != "(7,)"]["status"]) == {"passed"}


def test_changing_directory_in_the_implementation_changes_nothing_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--impl", str(HOSTILE / "changes_directory.py"), "--layers", "relu", "--out", "reports",
                 "--allow-frameworks"])
    assert code == 0
    assert Path.cwd() == tmp_path
    assert (tmp_path / "reports" / "cases.csv").exists()


def test_a_layer_that_hangs_gets_a_shortened_budget_after_its_first_timeouts(tmp_path):
    # The time it saves is measured by benchmarks/hanging_layer.py, not here (shared machines are noisy).
    code, frame = run(tmp_path, "hangs_on_dilation", "--layers", "conv2d", "--quick", "--timeout", "10", "--no-selfcheck",
                      "--allow-frameworks")
    hanging = frame[frame["dilation"] == "(2, 2)"]
    assert code == 1
    assert hanging["case"].nunique() >= 5 and set(hanging["status"]) == {"error"}
    assert hanging["reason"].str.startswith("timeout").all()
    per_case = hanging.groupby("case")["reason"].first()
    # Only the cases already running when the first timeout came had the full 10 s.
    assert per_case.str.contains("shortened budget").sum() >= len(per_case) - 4
    assert set(frame[frame["dilation"] != "(2, 2)"]["status"]) == {"passed"}


def test_a_layer_that_hangs_on_every_case_costs_a_few_timeouts_not_one_per_case(tmp_path):
    # No case of the run ever finishes, so there is no finished case to scale the budget by.
    code, frame = run(tmp_path, "hangs_in_workers", "--layers", "relu", "--timeout", "2", "--no-selfcheck")
    per_case = frame.groupby("case")["reason"].first()
    assert code == 1 and len(per_case) == 30
    assert per_case.str.startswith("timeout: the case did not finish within").all()
    full = per_case.str.contains("within 2 s")
    assert full.sum() <= 8  # those submitted before the first timeout came
    assert per_case[~full].str.contains("halved with each timeout, no case having finished yet").all()
    assert per_case.str.contains("within 0.5 s").sum() >= len(per_case) - 12


def test_a_run_that_checks_nothing_exits_5_and_says_why(tmp_path, capsys):
    skipped = tmp_path / "skip.py"
    skipped.write_text(adapter_skip_source() + "\ndef relu_forward(x):\n    skip('not today')\n\n"
                       "def relu_backward(dout, cache):\n    return dout\n")
    out = tmp_path / "nothing"
    assert main(["run", "--impl", str(skipped), "--out", str(out), "--quick"]) == 5
    # relu's quick sweep: each input kind (normal, zeros, near_max, tiny, mixed_magnitudes) at each dtype
    printed = capsys.readouterr().out
    assert "nothing was checked: all 10 cases were skipped (unsupported: not today (10 cases))" in printed
    assert "coverage: NONE, every planned case was skipped" in printed and "coverage: complete" not in printed
    assert (out / "cases.csv").exists()


@pytest.mark.parametrize("key, value, message", [
    ("stride", "[0]", "conv2d.stride: 0 is out of range: torch needs stride at least 1"),
    ("padding", "[-1]", "conv2d.padding: -1 is out of range: torch needs padding 0 or more"),
    ("dilation", "[[1, 0]]", "conv2d.dilation: (1, 0) is out of range"),
    ("kernel_size", "[0]", "conv2d.kernel_size: 0 is out of range"),
    ("dtype", '["float16"]', "unknown dtype 'float16'"),
])
def test_case_values_torch_cannot_take_exit_2_before_any_case_runs(tmp_path, capsys, key, value, message):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "bad.toml").write_text(f"[conv2d]\n[conv2d.grid]\n{key} = {value}\n")
    out = tmp_path / "reports"
    assert main(["run", "--cases", str(cases), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "bad.toml" in error and message in error
    assert not out.exists()


def test_a_space_with_no_valid_configuration_says_so(tmp_path, capsys):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "big.toml").write_text("[conv2d]\n[conv2d.grid]\nkernel_size = [9]\ninput_size = [[6, 6]]\n")
    assert main(["run", "--cases", str(cases), "--out", str(tmp_path / "reports")]) == 2
    error = capsys.readouterr().err
    assert "big.toml" in error and "conv2d" in error and "has no configuration torch accepts" in error


def test_out_that_is_a_file_or_unwritable_exits_2_at_once(tmp_path, capsys):
    existing = tmp_path / "a_file"
    existing.write_text("keep me")
    assert main(["run", "--layers", "relu", "--out", str(existing)]) == 2
    assert "is a file" in capsys.readouterr().err and existing.read_text() == "keep me"
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["run", "--layers", "relu", "--out", str(locked / "reports")]) == 2


def test_option_errors_read_naturally(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--timeout", "abc"])
    assert exit_info.value.code == 2
    assert "--timeout: expected a positive number, got 'abc'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--memory-limit", "lots"])
    assert "--memory-limit: expected a size such as 512MB or 2GB, got 'lots'" in capsys.readouterr().err


def test_report_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        assert main(["run", "--layers", "relu", "--quick", "--out", str(tmp_path / "reports"), "--workers", "0"]) == 0
    finally:
        os.umask(previous)
    for name in ("cases.csv", "summary.md", "summary.html", "junit.xml", "results.json"):
        assert stat.S_IMODE((tmp_path / "reports" / name).stat().st_mode) == 0o644


def test_the_users_module_is_never_imported_in_the_process_that_compares(tmp_path):
    log = tmp_path / "imported_in.log"
    module = tmp_path / "records_its_process.py"
    module.write_text(f"import os\nopen({str(log)!r}, 'a').write(str(os.getpid()) + '\\n')\n"
                      "import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n\n\n"
                      "def relu_backward(dout, cache):\n    return dout * (cache > 0)\n")
    assert main(["run", "--impl", str(module), "--layers", "relu", "--quick", "--out", str(tmp_path / "r")]) == 0
    pids = set(log.read_text().split())
    assert pids and str(os.getpid()) not in pids


def test_a_module_that_exits_while_loading_is_a_usage_error(tmp_path, capsys):
    module = tmp_path / "exits_on_import.py"
    module.write_text("import sys\nsys.exit(0)\n")
    assert main(["run", "--impl", str(module), "--out", str(tmp_path / "r")]) == 2
    assert "SystemExit" in capsys.readouterr().err
    module.write_text("import os\nos._exit(3)\n")
    assert main(["run", "--impl", str(module), "--out", str(tmp_path / "r")]) == 2
    assert "ended with exit code 3" in capsys.readouterr().err


def test_a_backward_that_declares_itself_unsupported_never_makes_a_case_pass(tmp_path):
    """refcheck's Unsupported raised by the code's own backward is an error, however right its
    outputs (only refcheck's adapters say what is not supported)."""
    module = tmp_path / "no_gradients.py"
    module.write_text("import numpy as np\nfrom refcheck.specs import Unsupported\n\n"
                      "def relu_forward(x):\n    return np.maximum(x, 0), x\n\n"
                      "def relu_backward(dout, cache):\n    raise Unsupported('no gradients here')\n", encoding="utf-8")
    code = main(["run", "--impl", str(module), "--layers", "relu", "--quick", "--out", str(tmp_path / "out"),
                 "--no-plots"])
    frame = pd.read_csv(tmp_path / "out" / "cases.csv")
    assert code == 1 and "passed" not in set(frame.groupby("case")["status"].min())
    assert set(frame.loc[frame["tensor"] == "grad_input", "status"]) == {"error"}


@pytest.mark.parametrize("how", ["tolerance", "empty", "name", "values", "slope", "forward_only", "drop",
                                 "drop_layer", "swap_layer"])
def test_a_module_that_changes_refcheck_s_planning_does_not_pass(tmp_path, capsys, how):
    """Planning loads the user's module, in a worker of its own; what it sends back is held to the
    case files and to the command line: a widened tolerance, emptied inputs, or an easier input
    kind or hyperparameter under a case's id stop the run; the code run is always the module named
    by --impl (here, a wrong relu), and its backward is checked unless this run says otherwise."""
    module = tmp_path / "plan_tamper.py"
    module.write_text((HOSTILE / "plan_tamper.py").read_text().replace('_HOW = "tolerance"', f"_HOW = {how!r}"))
    out = tmp_path / "reports"
    layers = {"slope": ["--layers", "leaky_relu"], "drop_layer": []}.get(how, ["--layers", "relu"])
    code = main(["run", "--impl", str(module), *layers, "--quick",   # (no --layers: every layer it has)
                 "--out", str(out), "--no-plots", "--no-oracle-cache"])
    if how in ("name", "forward_only"):
        frame = pd.read_csv(out / "cases.csv")
        assert code == 1 and "passed" not in set(frame.groupby("case")["status"].min())
        assert how == "name" or "grad_input" in set(frame["tensor"])
    else:
        assert code == 2
        error = capsys.readouterr().err
        expected = {"drop": "leaves out", "drop_layer": "leaves out", "swap_layer": "which --layers does not name"}
        assert expected.get(how, "does not match the case files") in error


def test_a_framework_hidden_from_the_worker_s_own_check_is_seen_from_outside(tmp_path):
    """torch imported under a computed name, with refcheck's in-worker check switched off: its
    libraries are still mapped into the worker, which the trusted side reads (/proc/<pid>/maps)."""
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(HOSTILE / "hidden_torch.py"), "--layers", "relu", "--quick", "--out", str(out),
                 "--no-plots", "--workers", "1"])
    frame = pd.read_csv(out / "cases.csv")
    assert code == 1 and set(frame["status"]) == {"failed"}
    assert set(frame["frameworks"]) == {"torch"}
    assert frame["reason"].str.startswith("the implementation imported torch").all()


def test_a_framework_loaded_after_a_process_was_first_looked_at_is_seen_when_it_grows():
    from refcheck.execution.frameworks import MappedFrameworks

    script = "import sys\nsys.stdin.readline()\nimport torch\nprint('loaded', flush=True)\nsys.stdin.readline()\n"
    with subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as process:
        try:
            seen = MappedFrameworks()
            assert seen.look([process.pid]) == set()
            process.stdin.write("go\n")
            process.stdin.flush()
            assert process.stdout.readline().strip() == "loaded"
            assert seen.look([process.pid]) == {"torch"}
        finally:
            process.kill()


def test_a_probe_call_that_exits_or_is_interrupted_is_error_rows_not_a_lost_run(tmp_path):
    """Discovery calls each class once on a probe case while planning: an os._exit or a
    KeyboardInterrupt there ended the planning process, and the run with it (exit 2, no report)."""
    code, frame = run(tmp_path, "probe_exits", "--layers", "relu,sigmoid,tanh", "--quick")
    assert code == 1
    layers = frame.groupby("layer")
    assert layers.get_group("relu")["reason"].str.contains("worker died").all()  # the case's process ended
    sigmoid = layers.get_group("sigmoid")
    assert set(sigmoid.loc[sigmoid["tensor"] == "output", "status"]) == {"passed"}
    assert sigmoid.loc[sigmoid["tensor"] == "grad_input", "reason"].str.contains("KeyboardInterrupt").all()
    assert set(layers.get_group("tanh")["status"]) == {"passed"}


def test_a_probe_call_that_hangs_is_stopped_and_its_layer_kept(monkeypatch):
    """A probe call running past PROBE_SECONDS raises: the candidate is kept as one that raises
    (its cases time out one by one) after one try, not one try per layout and argument form."""
    import types

    from refcheck.adapters import probe as probe_module
    from refcheck.adapters.discover import discover

    monkeypatch.setattr(probe_module, "PROBE_SECONDS", 0.3)
    calls = []
    module = types.ModuleType("hangs")

    class Conv2d:
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
            pass

        def forward(self, x):
            calls.append(1)
            while True:
                pass

        def backward(self, dout):
            return dout

    module.Conv2d = Conv2d
    found = discover([module], layers=["conv2d"])
    assert "conv2d" in found.layers and len(calls) == 1
    assert "did not return within 0.3 s" in " ".join(found.layers["conv2d"].notes)


def test_a_worker_discovers_only_the_layer_of_its_cases(tmp_path):
    """A worker running relu's cases does not call the module's other layers on their probe cases
    (a conv that hangs there made every relu case time out)."""
    from refcheck.execution.sweep import plan_sweep
    from refcheck.execution.worker import run_implementation

    marker = tmp_path / "conv_was_called"
    path = tmp_path / "layers.py"
    path.write_text(f'''
import numpy as np


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size):
        pass

    def forward(self, x):
        open({str(marker)!r}, "w").close()
        return x

    def backward(self, dout):
        return dout


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
''', encoding="utf-8")
    case = plan_sweep(None, ["relu"], quick=True).cases[0]
    raw = run_implementation(str(path), case, selfcheck=False)
    assert raw["status"] == "ran" and not marker.exists()


def test_a_run_that_cannot_check_anything_leaves_no_earlier_verdict_in_out(tmp_path, capsys):
    """Exit 2 after an earlier green run into the same --out: its reports are replaced by a
    junit.xml holding the error, so a grading loop reusing the folder never reads them as this run's."""
    out = tmp_path / "reports"
    assert main(["run", "--layers", "relu", "--quick", "--out", str(out), "--workers", "0"]) == 0
    assert (out / "cases.csv").exists()
    assert main(["run", "--impl", str(tmp_path / "missing.py"), "--out", str(out)]) == 2
    assert not (out / "cases.csv").exists() and not (out / "results.json").exists()
    junit = (out / "junit.xml").read_text()
    assert 'errors="1"' in junit and "missing.py" in junit and "no such file" in (out / "summary.md").read_text()
    fresh = tmp_path / "not" / "yet"  # a folder the run would have made: made, holding the error
    assert main(["run", "--impl", str(tmp_path / "missing.py"), "--out", str(fresh)]) == 2
    assert 'errors="1"' in (fresh / "junit.xml").read_text()


def test_a_backward_that_reads_the_last_forward_s_state_fails_and_is_named(tmp_path):
    """Between a case's forward and its backward the forward is called once more on other inputs,
    as in a network: a backward reading module or class state instead of its cache fails."""
    code, frame = run(tmp_path, "global_state", "--layers", "relu,sigmoid,tanh", "--quick")
    assert code == 1
    gradients = frame[frame["tensor"] == "grad_input"].set_index("layer")
    for layer in ("relu", "sigmoid"):
        failed = gradients.loc[[layer]]
        assert (failed["status"] == "failed").sum() >= len(failed) - 1  # a 1-element case cannot show it
        assert failed["diagnosis"].dropna().str.startswith("state shared between calls").all()
    assert set(frame.loc[frame["layer"] == "tanh", "status"]) == {"passed"}
    assert set(frame.loc[frame["tensor"] == "output", "status"]) == {"passed"}


def test_an_output_buffer_the_next_call_overwrites_fails_and_is_named(tmp_path):
    code, frame = run(tmp_path, "reused_buffer", "--layers", "relu", "--quick")
    assert code == 1
    sizable = frame[frame["input_shape"] != "(1,)"]
    assert set(sizable["status"]) == {"failed"}
    assert sizable["reason"].str.startswith("output buffer reused").all()
    assert sizable["diagnosis"].str.contains("return a new array on every call").all()


def test_a_process_the_code_under_test_detaches_does_not_outlive_the_run(tmp_path):
    # Left alone it would rewrite junit.xml as all passed once the run has written it (its relu is wrong).
    import os
    import time

    module = tmp_path / "detaches.py"
    module.write_text((HOSTILE / "detaches.py").read_text())
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(module), "--layers", "relu", "--quick", "--out", str(out), "--no-plots"])
    time.sleep(0.5)  # a process that escaped would go on hopping and writing its pid
    pids = [int(path.read_text()) for path in tmp_path.glob("detached-*.pid") if path.read_text()]
    assert code == 1 and len(pids) >= 2  # the planning worker's and at least one case worker's
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert 'failures="0"' not in (out / "junit.xml").read_text()


def test_case_files_changed_while_the_module_is_loaded_stop_the_run(tmp_path, capsys):
    """A module that, while it is loaded for planning, widens a tolerance in the case files (which
    this process reads after planning, and its user can write) stops the run."""
    import shutil

    from refcheck.cases.spaces import default_cases_dir

    cases = tmp_path / "cases"
    shutil.copytree(default_cases_dir(), cases)
    module = tmp_path / "widens.py"
    module.write_text(f'''
import numpy as np

with open({str(cases / "activations.toml")!r}, "a") as file:
    file.write("\\\\n[relu.tolerance]\\\\nfloat32 = 1e300\\\\nfloat64 = 1e300\\\\n")


def relu_forward(x):
    return np.abs(x), x


def relu_backward(dout, cache):
    return dout * np.sign(cache)
''')
    code = main(["run", "--impl", str(module), "--layers", "relu", "--cases", str(cases), "--quick",
                 "--out", str(tmp_path / "reports"), "--no-plots", "--no-oracle-cache"])
    assert code == 2 and "the case files changed while it was loaded" in capsys.readouterr().err


@pytest.mark.parametrize("forged", [False, True])
def test_code_that_raises_refcheck_s_unsupported_does_not_pass_a_layer_it_names(tmp_path, capsys, forged):
    """Unsupported raised by the code itself is an error row (only refcheck's adapters say a case
    is not supported); raised as if from refcheck's own files, its layer is skipped, and a layer
    with nothing checked exits 5 even when the others pass, named by --layers or not."""
    module = tmp_path / "raises_unsupported.py"
    module.write_text((HOSTILE / "raises_unsupported.py").read_text().replace("_FORGED = False", f"_FORGED = {forged}"))
    out = tmp_path / "reports"
    code = main(["run", "--impl", str(module), *([] if forged else ["--layers", "conv2d,relu"]), "--quick",
                 "--out", str(out), "--no-plots", "--no-oracle-cache"])
    frame = pd.read_csv(out / "cases.csv")
    conv = frame[frame["layer"] == "conv2d"]
    assert set(frame.loc[frame["layer"] == "relu", "status"]) == {"passed"}
    if forged:
        assert code == 5 and set(conv["status"]) == {"skipped"}
        assert "nothing was checked of conv2d: every case of it was skipped when run" in capsys.readouterr().out
    else:
        assert code == 1 and set(conv["status"]) == {"error"}
        assert conv["reason"].str.contains("raised refcheck's Unsupported, which only refcheck's adapters raise").all()
