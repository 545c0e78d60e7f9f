"""The real ``sentsim serve`` process on loopback, for the end-to-end, chaos and fault tests."""

from __future__ import annotations

import ctypes
import json
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
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


class ForkedServer:
    """A server forked by the zygote, handled like the ``Popen`` it replaces: ``pid``,
    ``returncode``, ``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``. It is this
    process's child (this process is a subreaper), so its exit status is ours to collect."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code once it has exited (negative: the signal), else ``None``."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(["sentsim", "serve"], timeout or 0)
            time.sleep(0.02)
        return code

    def send_signal(self, signum: int) -> None:
        """Signal it unless it has been reaped (so a recycled pid is never hit)."""
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM: a graceful shutdown."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no shutdown at all."""
        self.send_signal(signal.SIGKILL)


ServerProcess = subprocess.Popen[bytes] | ForkedServer


class Zygote:
    """One ``tests/integration/zygote.py`` process per pytest worker, started at the first
    server; ``None`` where the kernel has no subreapers (not Linux): servers are then
    plain subprocesses."""

    _process: subprocess.Popen[str] | None = None
    _unavailable = False

    @classmethod
    def fork(cls, argv: Sequence[str], env: dict[str, str]) -> ForkedServer | None:
        """Fork ``sentsim <argv>`` with ``env`` (cwd: the repository), or ``None``."""
        process = cls._started()
        if process is None:
            return None
        assert process.stdin is not None and process.stdout is not None
        request = {"argv": list(argv), "env": env, "cwd": str(ROOT)}
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        return ForkedServer(int(process.stdout.readline()))

    @classmethod
    def _started(cls) -> subprocess.Popen[str] | None:
        if cls._process is None and not cls._unavailable:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
            except (OSError, AttributeError):
                cls._unavailable = True
                return None
            env = {**os.environ, "HF_HUB_OFFLINE": "1"}
            process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("zygote.py"))],
                cwd=ROOT,
                env={**env, "PYTHONPATH": str(ROOT)},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", "the zygote did not start"
            cls._process = process
        return cls._process


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


def wait_healthy(process: ServerProcess, url: str, timeout_s: float = 180) -> None:
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
) -> Iterator[tuple[ServerProcess, str]]:
    """Start ``sentsim serve`` and wait for /health; yield ``(process, base URL)``. The process
    is terminated on exit unless the test killed it. Without a ``prefix`` it is forked from the
    worker's zygote (the same command line, ~7 s of imports less); with one, a subprocess.

    Args:
        data: Folder holding ``indexes/`` and ``models/``.
        args: More ``serve`` flags (``--model DIR``...).
        prefix: A command to run it under (``nsenter ...``).
        env: Extra environment variables.
    """
    port = free_port()
    variables = {**os.environ, "HF_HUB_OFFLINE": "1", "SENTSIM_API_KEY": "", **(env or {})}
    command = serve_command(data, port, *args)
    process: ServerProcess | None = None
    if not prefix:
        process = Zygote.fork(command[command.index("serve") :], variables)
    if process is None:
        process = subprocess.Popen(
            [*prefix, *command], cwd=ROOT, env=variables, stdout=subprocess.DEVNULL
        )
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
