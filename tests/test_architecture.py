"""The package layout: one folder per stage, no import cycles, torch only in the oracle.

The import-linter contracts live in pyproject.toml; these tests run them, and show on a planted
violation that they do catch one.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "refcheck"
TOP_LEVEL = {"__init__.py", "__main__.py", "pytest_plugin.py"}
STAGES = {"layers", "specs", "cases", "oracle", "adapters", "compare", "diagnosis", "execution", "report",
          "convention", "network", "cli"}
MAX_LINES = 400


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; "
               "sys.exit(c(['--no-cache']))"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_planted_cycle_breaks_the_layers_contract(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "refcheck", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    specs_init = tmp_path / "refcheck" / "specs" / "__init__.py"
    specs_init.write_text(specs_init.read_text() + "\nfrom ..execution import run_case  # planted\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "refcheck.specs" in result.stdout and "BROKEN" in result.stdout


def test_top_of_the_package_holds_only_entry_points_and_stages():
    files = {p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix == ".py"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__" and not p.name.startswith(".")}
    assert files == TOP_LEVEL
    assert folders == STAGES


def test_every_stage_says_what_it_takes_and_gives():
    for stage in STAGES:
        init = PACKAGE / stage / "__init__.py"
        text = init.read_text(encoding="utf-8")
        assert text.startswith('"""'), f"{init} has no docstring"


def test_no_module_on_the_checking_path_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if "convention" not in p.parts and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
