"""End to end: the real ``sentsim serve`` process with the default model, on loopback.

Upserts every distinct STS-B test sentence, checks paraphrase retrieval, kills the process with
SIGKILL, restarts it and gets identical results back. Then runs the README's curl examples
against a fresh server.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.core.datasets import read_sts

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STSB_TEST = ROOT.parent / "shared" / "data" / "stsb-en" / "test.tsv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(data: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``sentsim serve`` (the console script's module) and wait for /health."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SENTSIM_API_KEY": ""}
    script = Path(sys.executable).parent / "sentsim"  # the console script the image runs
    entry = [str(script)] if script.is_file() else [sys.executable, "-m", "app.cli"]
    command = [*entry, "serve", "--port", str(port)]
    command += ["--indexes-dir", str(data / "indexes"), "--models-dir", str(data / "models")]
    command += ["--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, "sentsim serve exited during start-up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "sentsim serve did not become healthy"
            time.sleep(0.5)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def _search_all(client: httpx.Client, queries: list[str]) -> list[list[dict[str, object]]]:
    results: list[list[dict[str, object]]] = []
    for start in range(0, len(queries), 256):
        response = client.post(
            "/collections/stsb/search", json={"queries": queries[start : start + 256], "top_k": 6}
        )
        assert response.status_code == 200, response.text
        results += response.json()["results"]
    return results


@pytest.mark.skipif(not STSB_TEST.is_file(), reason="needs ../shared/data/stsb-en/test.tsv")
def test_retrieval_and_crash_recovery(tmp_path: Path) -> None:
    pairs = read_sts(STSB_TEST)
    sentences = list(dict.fromkeys(pairs.sentences))  # 2552 distinct sentences
    doc_id = {s: f"s{i}" for i, s in enumerate(sentences)}
    positives = [
        (a, b)
        for a, b, score in zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True)
        if score >= 4.0
    ]
    queries = [a for a, _ in positives]
    port = _free_port()
    with (
        _server(tmp_path, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client,
    ):
        assert (
            client.post("/collections", json={"name": "stsb", "index": "flat"}).status_code == 201
        )
        for start in range(0, len(sentences), 1000):
            docs = [{"id": doc_id[s], "text": s} for s in sentences[start : start + 1000]]
            response = client.post("/collections/stsb/documents", json={"documents": docs})
            assert response.status_code == 200, response.text
        assert client.get("/collections/stsb").json()["count"] == len(sentences) == 2552
        before = _search_all(client, queries)

    found = 0
    for (a, b), hits in zip(positives, before, strict=True):
        others = [h["id"] for h in hits if h["id"] != doc_id[a]][:5]
        found += a == b or doc_id[b] in others
    rate = found / len(positives)
    # Plain cosine with this model over the same sentences finds 96.2%.
    assert rate >= 0.95, f"top-5 retrieval over {len(positives)} pairs: {rate:.1%}"

    # Crash: upsert, then SIGKILL before any checkpoint of the index; restart.
    port = _free_port()
    with (
        _server(tmp_path, port) as process,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client,
    ):
        late = {"id": "late", "text": "A document written just before the crash."}
        assert (
            client.post("/collections/stsb/documents", json={"documents": [late]}).status_code
            == 200
        )
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    port = _free_port()
    with (
        _server(tmp_path, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client,
    ):
        assert client.get("/collections/stsb").json()["count"] == len(sentences) + 1
        assert client.get("/collections/stsb/documents/late").json()["text"] == late["text"]
        assert client.delete("/collections/stsb/documents/late").status_code == 204
        after = _search_all(client, queries)
    assert [[h["id"] for h in r] for r in after] == [[h["id"] for h in r] for r in before]
    for r_after, r_before in zip(after, before, strict=True):
        for h_after, h_before in zip(r_after, r_before, strict=True):
            assert abs(h_after["score"] - h_before["score"]) < 1e-5


def _readme_curl_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## REST API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.+?)\n```", section, re.S)
    commands = []
    for block in blocks:
        commands += [
            c.strip() for c in re.split(r"\n(?=curl )", block) if c.strip().startswith("curl")
        ]
    return commands


def test_readme_curl_examples_work(tmp_path: Path) -> None:
    commands = _readme_curl_commands()
    assert len(commands) >= 17
    port = _free_port()
    with _server(tmp_path, port):
        for command in commands:
            live = command.replace("localhost:8000", f"127.0.0.1:{port}")
            live = live.replace("curl ", "curl --fail-with-body -sS ", 1)
            result = subprocess.run(["bash", "-c", live], capture_output=True, text=True)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
