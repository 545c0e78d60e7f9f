"""The real ``sentsim serve`` process on loopback, for the end-to-end, chaos and fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on at the moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(data: Path, port: int, *args: str) -> list[str]:
    """``sentsim serve`` (the console script the Docker image runs) over ``data``'s folders."""
    script = Path(sys.executable).parent / "sentsim"
    entry = [str(script)] if script.is_file() else [sys.executable, "-m", "app.cli"]
    return [
        *entry,
        "serve",
        "--port",
        str(port),
        "--indexes-dir",
        str(data / "indexes"),
        "--models-dir",
        str(data / "models"),
        "--log-level",
        "warning",
        *args,
    ]


def wait_healthy(process: subprocess.Popen[bytes], url: str, timeout_s: float = 180) -> None:
    """Wait until ``GET /health`` answers 200 (ok or degraded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, (
            f"sentsim serve exited during start-up ({process.returncode})"
        )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "sentsim serve did not become healthy"
        time.sleep(0.2)


@contextmanager
def server(
    data: Path, *args: str, prefix: Sequence[str] = (), env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start ``sentsim serve`` and wait for /health; yield ``(process, base URL)``. The process
    is terminated on exit unless the test killed it.

    Args:
        data: Folder holding ``indexes/`` and ``models/``.
        args: More ``serve`` flags (``--model DIR``...).
        prefix: A command to run it under (``nsenter ...``).
        env: Extra environment variables.
    """
    port = free_port()
    variables = {**os.environ, "HF_HUB_OFFLINE": "1", "SENTSIM_API_KEY": "", **(env or {})}
    command = [*prefix, *serve_command(data, port, *args)]
    process = subprocess.Popen(command, cwd=ROOT, env=variables, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url)
        yield process, url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
