"""End to end: the real ``sentsim serve`` process with the default model, on loopback.

Upserts every distinct STS-B test sentence, checks paraphrase retrieval, kills the process with
SIGKILL, restarts it and gets identical results back. Then runs the README's curl examples
against a fresh server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from app.core.datasets import read_sts
from tests.integration.server import ROOT, server

pytestmark = pytest.mark.slow

STSB_TEST = ROOT.parent / "shared" / "data" / "stsb-en" / "test.tsv"


def _search_all(client: httpx.Client, queries: list[str]) -> list[list[dict[str, object]]]:
    results: list[list[dict[str, object]]] = []
    for start in range(0, len(queries), 256):
        response = client.post(
            "/collections/stsb/search", json={"queries": queries[start : start + 256], "top_k": 6}
        )
        assert response.status_code == 200, response.text
        results += response.json()["results"]
    return results


def _backend_flags(backend: str, data: Path) -> list[str]:
    """``serve`` flags for a backend: Milvus through a Milvus Lite file beside the indexes."""
    if backend == "faiss":
        return []
    pytest.importorskip("pymilvus", reason="the milvus extra: pip install sentsim[milvus]")
    return ["--vector-backend", "milvus", "--milvus-uri", str(data / "milvus" / "milvus.db")]


@pytest.mark.skipif(not STSB_TEST.is_file(), reason="needs ../shared/data/stsb-en/test.tsv")
@pytest.mark.parametrize("backend", ["faiss", "milvus"])
def test_retrieval_and_crash_recovery(tmp_path: Path, backend: str) -> None:
    flags = _backend_flags(backend, tmp_path)
    pairs = read_sts(STSB_TEST)
    sentences = list(dict.fromkeys(pairs.sentences))  # 2552 distinct sentences
    doc_id = {s: f"s{i}" for i, s in enumerate(sentences)}
    positives = [
        (a, b)
        for a, b, score in zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True)
        if score >= 4.0
    ]
    queries = [a for a, _ in positives]
    with (
        server(tmp_path, *flags) as (_, url),
        httpx.Client(base_url=url, timeout=120) as client,
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

    # Crash: upsert, then SIGKILL before any checkpoint of the index (FAISS) or flush (Milvus
    # Lite, whose server process is killed with it); restart.
    with (
        server(tmp_path, *flags) as (process, url),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        late = {"id": "late", "text": "A document written just before the crash."}
        assert (
            client.post("/collections/stsb/documents", json={"documents": [late]}).status_code
            == 200
        )
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    with (
        server(tmp_path, *flags) as (_, url),
        httpx.Client(base_url=url, timeout=120) as client,
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
    with server(tmp_path) as (_, url):
        for command in commands:
            live = command.replace("localhost:8000", url.removeprefix("http://"))
            live = live.replace("curl ", "curl --fail-with-body -sS ", 1)
            result = subprocess.run(["bash", "-c", live], capture_output=True, text=True)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
