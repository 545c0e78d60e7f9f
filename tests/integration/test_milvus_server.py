"""Several processes on one Milvus: ``milvus-lite server`` (Milvus Lite's gRPC server) shared by
this process and another one, each with its own MilvusCollection — what stateless replicas do.
(A Milvus Lite *file* opens in one process only; the second gets "Open local milvus failed".)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.index.store import Document
from tests.integration.server import ROOT

pytest.importorskip("pymilvus", reason="the milvus extra: pip install sentsim[milvus]")

pytestmark = pytest.mark.slow

# Another process's view, as a replica would have it: open by name, count, read, search.
READER = """
import json, sys
import numpy as np
from pymilvus import MilvusClient
from app.index.milvus_catalog import open_collection
collection = open_collection(MilvusClient(uri=sys.argv[1]), "faq")
doc = collection.get("d2")
hits = collection.search(np.array([json.loads(sys.argv[2])], np.float32), 3)[0]
print(json.dumps({"count": collection.count(), "d2": doc and doc.text,
                  "hits": [h.id for h in hits]}))
"""


@pytest.fixture
def uri(milvus_uri: str) -> str:
    """A Milvus Lite server that several processes reach: a fresh database of the session's."""
    return milvus_uri


def _read(uri: str, query: np.ndarray) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", READER, uri, json.dumps(query.tolist())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_second_process_sees_every_write(uri: str) -> None:
    from app.index.milvus_catalog import MilvusCatalog

    raw = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    catalog = MilvusCatalog(uri)
    catalog.start()
    writer = catalog.create({"name": "faq", "index": "flat", "dimension": 4}, None)
    writer.upsert([Document(f"d{i}", f"text {i}") for i in range(10)], raw)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    expected = [f"d{i}" for i in np.argsort(-(unit @ unit[5]))[:3]]
    assert _read(uri, raw[5]) == {"count": 10, "d2": "text 2", "hits": expected}

    writer.upsert([Document("d2", "replaced")], raw[2:3])
    writer.delete("d5")
    seen = _read(uri, raw[5])
    assert seen["count"] == 9 and seen["d2"] == "replaced"
    assert "d5" not in seen["hits"]  # type: ignore[operator]


def test_two_sentsim_replicas_share_every_collection(
    uri: str, tmp_path: Path, tiny_bert_dir: Path
) -> None:
    """Two ``sentsim serve`` processes on one Milvus, as behind a load balancer: whatever one
    does (create, write, refit, delete, then die by SIGKILL) the other sees on its next
    request, with no restart and nothing to invalidate."""
    import os
    import signal
    from contextlib import ExitStack

    import httpx

    from tests.integration.server import server

    env = {"SENTSIM_VECTOR_BACKEND": "milvus", "SENTSIM_MILVUS_URI": uri}
    flags = ("--model", str(tiny_bert_dir), "--precision", "fp32", "--generator", "none")
    docs = [
        {"id": f"d{i}", "text": t, "metadata": {"topic": i % 2}}
        for i, t in enumerate(
            [
                "a man plays a guitar",
                "the dog eats food",
                "a woman slices tomatoes",
                "children run on the beach",
                "a cat sleeps",
                "stocks fell sharply",
            ]
        )
    ]
    query = {"query": "a man is playing music", "top_k": 6, "filter": {"topic": 0}}
    with ExitStack() as stack:
        (a_process, a_url), (_, b_url) = (
            stack.enter_context(server(tmp_path / name, *flags, env=env)) for name in "ab"
        )
        a = stack.enter_context(httpx.Client(base_url=a_url, timeout=60))
        b = stack.enter_context(httpx.Client(base_url=b_url, timeout=60))
        assert a.post("/collections", json={"name": "faq"}).status_code == 201
        assert b.post("/collections", json={"name": "faq"}).status_code == 409
        assert a.post("/collections/faq/documents", json={"documents": docs}).status_code == 200
        assert b.get("/collections/faq").json()["count"] == 6
        assert (
            b.post("/collections/faq/search", json=query).json()
            == a.post("/collections/faq/search", json=query).json()
        )
        refit = b.post("/collections/faq/whitening", json={"k": 4})
        assert refit.status_code == 200 and refit.json()["dimension"] == 4
        assert a.get("/collections/faq").json()["dimension"] == 4  # a uses b's whitening
        assert (
            b.post("/collections/faq/search", json=query).json()
            == a.post("/collections/faq/search", json=query).json()
        )
        late = {"id": "late", "text": "written by a just before it dies"}
        assert a.post("/collections/faq/documents", json={"documents": [late]}).status_code == 200
        os.kill(a_process.pid, signal.SIGKILL)
        a_process.wait(30)
        assert b.get("/collections/faq/documents/late").json()["text"] == late["text"]
        assert b.delete("/collections/faq").status_code == 204
        assert b.get("/collections").json()["collections"] == []
