"""The README's two commands: .ci/run must run exactly the stated test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_states_a_run_and_a_test_command() -> None:
    run, test = _commands()
    assert run.endswith(".venv/bin/sentsim serve")
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, test = _commands()
    ci_lines = (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()
    assert test in ci_lines
