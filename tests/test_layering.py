"""Layering rules (ARCHITECTURE.md §3.2), checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
WEB = ("fastapi", "starlette", "uvicorn", "typer")
EDGES = {"app.cli", "app.main"}


def _modules() -> list[str]:
    names = []
    for path in sorted(APP.rglob("*.py")):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        edge = name in EDGES or name.startswith(("app.api", "app.cli."))
        if not edge:
            names.append(name)
    return names


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_ml_core_imports_no_web_framework() -> None:
    loaded = _loaded_after_import(_modules())
    assert not [m for m in WEB if m in loaded]


@pytest.mark.parametrize(
    "module",
    [
        "app.core.config",
        "app.core.datasets",
        "app.encoding.registry",
        "app.encoding.pooling",
        "app.transforms.whitening",
        "app.similarity.metrics",
        "app.evaluation.sts",
        "app.services.evaluation",
        "app.similarity.ot",
    ],
)
def test_light_modules_do_not_import_torch(module: str) -> None:
    loaded = _loaded_after_import([module])
    assert "torch" not in loaded and "transformers" not in loaded
