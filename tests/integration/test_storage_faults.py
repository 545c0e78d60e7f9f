"""A real full disk and a real read-only folder under the real server (issue 9, rows 8 and 9).

The indexes folder is a small tmpfs mounted in a user + mount namespace of its own (no root
needed outside it); the server runs inside that namespace (``nsenter``), and the test fills,
frees and remounts the tmpfs through ``/proc/<pid>/root``. Skipped where user namespaces are
not allowed.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server import server

pytestmark = pytest.mark.slow

DOCS = [
    {"id": f"d{i}", "text": text, "metadata": {"i": i}}
    for i, text in enumerate(
        [
            "a man plays a guitar",
            "the dog eats food",
            "a woman slices tomatoes",
            "children running on the beach",
            "the cat sits on the house",
            "a boy rides a horse",
        ]
    )
]


class Namespace:
    """A process holding a user + mount namespace in which ``folder`` is a small tmpfs."""

    def __init__(self, folder: Path, size: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        script = f'mount -t tmpfs -o size={size} tmpfs "$1" && echo ready && exec sleep 3600'
        self.holder = subprocess.Popen(
            [
                "unshare",
                "--user",
                "--map-root-user",
                "--mount",
                "sh",
                "-c",
                script,
                "-",
                str(folder),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != b"ready":
            self.holder.kill()
            pytest.skip("user and mount namespaces are not available here")
        self.prefix = ["nsenter", "-t", str(self.holder.pid), "-U", "-m"]
        self.inside = Path(f"/proc/{self.holder.pid}/root{folder}")

    def fill(self) -> None:
        """Write a file until the tmpfs is full."""
        with open(self.inside / "filler", "wb") as f:
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
        with pytest.raises(OSError) as full:
            (self.inside / "probe").write_bytes(b"\0" * 65536)
        assert full.value.errno == errno.ENOSPC

    def free(self) -> None:
        (self.inside / "filler").unlink()
        (self.inside / "probe").unlink(missing_ok=True)

    def remount_read_only(self) -> None:
        subprocess.run([*self.prefix, "mount", "-o", "remount,ro", str(self.folder)], check=True)

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait(10)


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[Namespace]:
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        pytest.skip("needs unshare and nsenter (util-linux)")
    ns = Namespace(tmp_path / "indexes", "8m")
    yield ns
    ns.close()


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"])


def test_full_disk(namespace: Namespace, tmp_path: Path, tiny_bert_dir: Path) -> None:
    args = ("--model", str(tiny_bert_dir))
    # Text within the tiny BERT's 128 tokens (longer would be refused with 413); the metadata
    # is what fills the disk.
    big = [{"text": f"the dog eats {i} " * 8, "metadata": {"pad": "x" * 4000}} for i in range(200)]
    with (
        server(tmp_path, *args, prefix=namespace.prefix) as (_, url),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        assert client.post("/collections", json={"name": "faq"}).status_code == 201
        assert (
            client.post("/collections/faq/documents", json={"documents": DOCS}).status_code == 200
        )
        assert client.post("/collections/faq/whitening", json={"k": 4}).status_code == 200
        info = client.get("/collections/faq").json()
        namespace.fill()

        message = _error(client.post("/collections/faq/documents", json={"documents": big}), 507)
        assert "disk is full" in message and str(tmp_path) not in message
        health = client.get("/health").json()
        assert health["status"] == "degraded" and "disk is full" in " ".join(health["reasons"])

        _error(client.post("/collections", json={"name": "new"}), 507)
        assert client.get("/collections/new").status_code == 404
        assert sorted(p.name for p in namespace.inside.iterdir()) == ["faq", "filler", "probe"]

        _error(client.post("/collections/faq/whitening", json={"k": 8}), 507)
        assert client.get("/collections/faq").json() == info
        hits = client.post("/collections/faq/search", json={"query": "the dog eats food"})
        assert hits.json()["hits"][0]["id"] == "d1"

    # Stopped and started again while the disk is still full: it serves what it stored.
    with (
        server(tmp_path, *args, prefix=namespace.prefix) as (_, url),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        again = client.get("/collections/faq").json()
        drift = again.pop("whitening_drift")  # recomputed by this process: equal up to rounding
        assert again == {k: v for k, v in info.items() if k != "whitening_drift"}
        assert drift == pytest.approx(info["whitening_drift"], rel=1e-5)
        hits = client.post("/collections/faq/search", json={"query": "a boy rides a horse"})
        assert hits.json()["hits"][0]["id"] == "d5"
        namespace.free()
        assert client.post("/collections/faq/documents", json={"documents": big}).status_code == 200
        assert client.get("/health").json()["status"] == "ok"
        assert client.post("/collections", json={"name": "new"}).status_code == 201
        assert client.get("/collections/faq").json()["count"] == len(DOCS) + len(big)


def test_read_only_indexes_folder(
    namespace: Namespace, tmp_path: Path, tiny_bert_dir: Path
) -> None:
    args = ("--model", str(tiny_bert_dir))
    with (
        server(tmp_path, *args, prefix=namespace.prefix) as (process, url),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        for name, index in (("faq", "flat"), ("graph", "hnsw")):
            assert (
                client.post("/collections", json={"name": name, "index": index}).status_code == 201
            )
            response = client.post(f"/collections/{name}/documents", json={"documents": DOCS})
            assert response.status_code == 200
        late = {"id": "late", "text": "written just before the crash"}
        assert (
            client.post("/collections/faq/documents", json={"documents": [late]}).status_code == 200
        )
        process.kill()  # no checkpoint: the late write is only in SQLite's WAL
        process.wait(30)
    namespace.remount_read_only()

    with (
        server(tmp_path, *args, prefix=namespace.prefix) as (_, url),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        health = client.get("/health").json()
        assert health["status"] == "degraded" and health["store"] == "read-only"
        listed = {c["name"]: c for c in client.get("/collections").json()["collections"]}
        assert listed["faq"]["status"] == listed["graph"]["status"] == "read_only"
        assert listed["faq"]["count"] == len(DOCS) + 1 and listed["graph"]["count"] == len(DOCS)
        assert client.get("/collections/faq/documents/late").json()["text"] == late["text"]
        for name in ("faq", "graph"):
            hits = client.post(f"/collections/{name}/search", json={"query": "a boy rides a horse"})
            assert hits.json()["hits"][0]["id"] == "d5"
        assert client.post("/v1/embeddings", json={"input": "still serving"}).status_code == 200
        refused = [
            client.post("/collections/faq/documents", json={"documents": DOCS}),
            client.post("/collections", json={"name": "new"}),
            client.delete("/collections/faq/documents/d1"),
            client.delete("/collections/faq"),
            client.post("/collections/faq/whitening", json={}),
        ]
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.json()["error_type"] == "read_only"
            assert "SENTSIM_INDEXES_DIR" in response.json()["error"]
