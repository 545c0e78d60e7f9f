"""The README's installs work off these machines: every lock its commands install from
resolves with a pip that knows only the public package index (issue 10 item 1)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import _commands

ROOT = Path(__file__).resolve().parents[1]


def _locks() -> list[str]:
    files = {m for command in _commands() for m in re.findall(r"-r (\S+)", command)}
    assert files, "the README's commands install from no lock"
    return sorted(files)


@pytest.mark.parametrize("lock", _locks())
def test_locks_pin_no_local_version_label(lock: str) -> None:
    """A local label (``torch==2.13.0+cpu``) exists only on PyTorch's own index."""
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / lock).read_text(), re.MULTILINE)
    assert pins and "torch" in dict(pins)
    assert [f"{name}=={v}" for name, v in pins if "+" in v] == []


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def public_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip's HTTP cache for these tests alone: new, so it holds only what the public index
    served in this session (never the machine's own wheels), and shared, so the second lock
    reuses the answers the first one got (the runtime lock is a subset of the dev lock)."""
    return tmp_path_factory.mktemp("pip-cache")


@pytest.mark.slow
@pytest.mark.xdist_group("public-index")  # one worker, one after the other: the cache is shared
@pytest.mark.parametrize("lock", sorted(_locks(), key=lambda lock: "dev" not in lock))
def test_locks_resolve_on_the_public_index_alone(
    lock: str, tmp_path: Path, public_cache: Path
) -> None:
    if not _pypi_reachable():
        pytest.skip("pypi.org cannot be reached from here")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no local wheel folder, no extra index, no constraint
    command = [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run"]
    command += ["--ignore-installed", "--cache-dir", str(public_cache)]
    command += ["--report", str(tmp_path / "r.json")]
    result = subprocess.run(
        [*command, "-r", str(ROOT / lock)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Would install" in result.stdout and "torch-2.13.0" in result.stdout
