"""Several processes on one Milvus: ``milvus-lite server`` (Milvus Lite's gRPC server) shared by
this process and another one, each with its own MilvusCollection — what stateless replicas do.
(A Milvus Lite *file* opens in one process only; the second gets "Open local milvus failed".)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.index.store import Document
from tests.integration.server import ROOT, free_port

pytest.importorskip("pymilvus", reason="the milvus extra: pip install sentsim[milvus]")

pytestmark = pytest.mark.slow

# Another process's view, as a replica would have it: open by name, count, read, search.
READER = """
import json, sys
import numpy as np
from pymilvus import MilvusClient
from app.index.milvus import MilvusCollection
collection = MilvusCollection.open(MilvusClient(uri=sys.argv[1]), "faq")
doc = collection.get("d2")
hits = collection.search(np.array([json.loads(sys.argv[2])], np.float32), 3)[0]
print(json.dumps({"count": collection.count(), "d2": doc and doc.text,
                  "hits": [h.id for h in hits]}))
"""


@pytest.fixture
def uri(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    server = Path(sys.executable).parent / "milvus-lite"
    process = subprocess.Popen(
        [
            str(server),
            "server",
            "--data-dir",
            str(tmp_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"http://127.0.0.1:{port}"
    from pymilvus import MilvusClient

    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "milvus-lite server exited"
        try:
            MilvusClient(uri=address, timeout=2).list_collections()
            break
        except Exception:  # noqa: BLE001 - not listening yet
            assert time.monotonic() < deadline, "milvus-lite server did not start"
            time.sleep(0.3)
    yield address
    process.terminate()
    process.wait(30)


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
    from pymilvus import MilvusClient

    from app.index.milvus import MilvusCollection

    raw = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    writer = MilvusCollection.create(
        MilvusClient(uri=uri), {"name": "faq", "index": "flat", "dimension": 4}
    )
    writer.upsert([Document(f"d{i}", f"text {i}") for i in range(10)], raw)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    expected = [f"d{i}" for i in np.argsort(-(unit @ unit[5]))[:3]]
    assert _read(uri, raw[5]) == {"count": 10, "d2": "text 2", "hits": expected}

    writer.upsert([Document("d2", "replaced")], raw[2:3])
    writer.delete("d5")
    seen = _read(uri, raw[5])
    assert seen["count"] == 9 and seen["d2"] == "replaced"
    assert "d5" not in seen["hits"]  # type: ignore[operator]
