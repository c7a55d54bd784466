"""The README's two commands are the ones newcomers copy; CI must run the second one exactly."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)[:2]


def test_readme_starts_with_the_two_commands_pinning_torch():
    text = (ROOT / "README.md").read_text()
    first_block = text.index("```bash")
    assert text[:first_block].strip() == "# refcheck"
    install_and_run, install_and_test = readme_commands()
    assert install_and_run.endswith("refcheck run") and "torch==2.13.0" in install_and_run
    assert '-e ".[dask]"' in install_and_run  # refcheck run --dask works after the first command
    assert install_and_test.endswith("pytest") and "torch==2.13.0" in install_and_test
    assert '-e ".[test,dask]"' in install_and_test  # the Dask tests run against a real cluster


def test_ci_runs_the_readme_test_command_in_a_fresh_environment():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()
    assert "rm -rf .venv" in ci
