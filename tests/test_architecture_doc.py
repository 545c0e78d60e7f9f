"""docs/architecture.md stays the true map: every module of app/ is in it, and every module it
names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def _named() -> set[str]:
    return set(re.findall(r"`(app/[\w/]+\.py)`", DOC.read_text(encoding="utf-8")))


def test_every_module_of_app_is_on_the_map() -> None:
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "app").rglob("*.py")}
    missing = sorted(modules - _named())
    assert not missing, f"add these to docs/architecture.md: {missing}"


def test_the_map_names_no_module_that_is_gone() -> None:
    gone = sorted(m for m in _named() if not (ROOT / m).is_file())
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"
