"""Issue 9: each row of the attacker / failing-disk table, reproduced through the API.

Every test here failed before its fix (checked against the commit before the issue's work)
and passes after. Storage faults are injected where the code meets the disk (the SQLite
store, the FAISS index file, the whitening files, the folder removal), with the errors a full
or read-only disk raises; tests/integration/test_storage_faults.py repeats the main ones on a
real full tmpfs and a real read-only mount.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.core.config import Settings
from app.index.faiss_index import FaissIndex
from app.index.store import Document, DocumentStore
from app.main import create_app
from app.services.batching import MicroBatcher
from app.transforms.whitening import Whitening

DOCS = [
    {"id": "q1", "text": "a man plays a guitar", "metadata": {"lang": "en"}},
    {"id": "q2", "text": "the dog eats food", "metadata": {"lang": "en"}},
    {"id": "q3", "text": "a woman slices tomatoes", "metadata": {"lang": "fr"}},
    {"id": "q4", "text": "children running on the beach", "metadata": {"lang": "fr"}},
]
JSON = {"content-type": "application/json"}


def _fill(client: TestClient, name: str = "faq", **extra: Any) -> None:
    assert client.post("/collections", json={"name": name, **extra}).status_code == 201
    response = client.post(f"/collections/{name}/documents", json={"documents": DOCS})
    assert response.status_code == 200, response.text


def _disk_full(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", "/srv/secret/indexes/x")


def _sqlite_full(*_: Any, **__: Any) -> None:
    raise sqlite3.OperationalError("database or disk is full")


def _assert_error(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    if isinstance(body["error"], dict):  # /v1/: OpenAI's shape
        assert set(body["error"]) == {"message", "type", "param", "code"}
        body = {"error": body["error"]["message"], "error_type": body["error"]["code"]}
    assert set(body) == {"error", "error_type"}
    for word in words:
        assert word in body["error"], (word, body)
    return body


# --- 1. index strings ------------------------------------------------------------------


@pytest.mark.parametrize(
    "index", ["HNSW0", "HNSW1", "PQ1x0", "IVF2,PQ4x0", "IVF0,Flat", "NSG0", "NSG32", "IVF2,PQ3"]
)
def test_row1_index_strings_that_crash_faiss_are_refused(client: TestClient, index: str) -> None:
    body = _assert_error(client.post("/collections", json={"name": "x", "index": index}), 422)
    assert "accepted" in body["error"] or "pattern" in body["error"]
    assert client.get("/collections/x").status_code == 404


def test_row1_schema_carries_the_patterns(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    create = schema["CollectionCreate"]["properties"]
    assert create["name"]["pattern"] == "^[a-z0-9_-]{1,64}$"
    assert "IVF" in create["index"]["pattern"]
    assert "pattern" in schema["DocumentIn"]["properties"]["id"]["anyOf"][0]


# --- 2, 3. text that is not valid Unicode; metadata depth -------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/embeddings", b'{"input": "abc\\ud800def"}', "input"),
        ("/embed", b'{"inputs": ["ok", "abc\\udfffdef"]}', "inputs[1]"),
        (
            "/similarity",
            b'{"inputs": {"source_sentence": "a\\ud800", "sentences": ["b"]}}',
            "inputs.source_sentence",
        ),
        ("/collections/faq/documents", b'{"documents": [{"text": "x\\ud800"}]}', "text"),
        ("/collections/faq/search", b'{"query": "\\ud800"}', "query"),
    ],
)
def test_row2_lone_surrogates_are_refused_naming_the_field(
    client: TestClient, path: str, body: bytes, field: str
) -> None:
    _fill(client)
    _assert_error(client.post(path, content=body, headers=JSON), 422, field, "Unicode")
    assert client.post("/v1/embeddings", json={"input": "still fine"}).status_code == 200


def test_row3_metadata_that_could_not_be_returned_is_refused(client: TestClient) -> None:
    _fill(client)
    surrogate = b'{"documents": [{"id": "s", "text": "t", "metadata": {"note": "\\ud800"}}]}'
    _assert_error(
        client.post("/collections/faq/documents", content=surrogate, headers=JSON),
        422,
        "documents[0].metadata.note",
    )
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    response = client.post(
        "/collections/faq/documents",
        json={"documents": [{"id": "d", "text": "t", "metadata": deep}]},
    )
    _assert_error(response, 413, "SENTSIM_MAX_METADATA_DEPTH")
    assert client.get("/collections/faq/documents/s").status_code == 404
    assert client.get("/collections/faq/documents/d").status_code == 404
    assert client.post("/collections/faq/search", json={"query": "a man"}).status_code == 200


def test_row3_documents_stored_before_the_fix_are_still_served(
    client: TestClient, settings: Settings
) -> None:
    """Metadata with a lone surrogate already in a store (written before the edge refused it)
    comes back with the surrogate as its escape text, not as a 500 on every read; proper
    surrogate pairs (emoji) are untouched."""
    _fill(client)
    store = DocumentStore(settings.indexes_dir / "faq" / "store.sqlite")
    vector = store.iter_vectors().__next__()[1][:1]
    metadata = {"note": "x\ud800", "emoji": "\U0001f600", "deep": [{"k\udfff": 1}]}
    store.upsert([Document("old", "a man plays a guitar", metadata)], vector)
    store.close()
    response = client.get("/collections/faq/documents/old")
    assert response.status_code == 200, response.text
    assert response.json()["metadata"] == {
        "note": "x\\ud800",
        "emoji": "\U0001f600",
        "deep": [{"k\\udfff": 1}],
    }


# --- 4, 5. collection lifecycle under concurrency and failure ---------------------------


def test_row4_request_racing_a_delete_gets_404(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(client)
    reached, release = threading.Event(), threading.Event()
    encode = MicroBatcher.encode

    async def gated(self: MicroBatcher, sentences: Any) -> Any:
        if sentences == ["gated query"]:
            reached.set()
            while not release.is_set():
                await __import__("asyncio").sleep(0.01)
        return await encode(self, sentences)

    monkeypatch.setattr(MicroBatcher, "encode", gated)
    result: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: result.update(
            r=client.post("/collections/faq/search", json={"query": "gated query"})
        )
    )
    thread.start()
    assert reached.wait(10)
    assert client.delete("/collections/faq").status_code == 204
    release.set()
    thread.join(10)
    _assert_error(result["r"], 404, "faq")
    assert client.get("/collections").status_code == 200


def test_row5_delete_that_cannot_remove_the_files_leaves_no_half_collection(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(client)
    rmtree = shutil.rmtree

    def cannot_remove(path: Any, ignore_errors: bool = False, **_: Any) -> None:
        if ignore_errors:
            return None  # what rmtree(ignore_errors=True) does with an undeletable folder
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", cannot_remove)
    assert client.delete("/collections/faq").status_code == 204
    assert client.get("/collections").status_code == 200
    assert client.get("/collections/faq").status_code == 404
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    _fill(client)  # the name is free again
    assert client.get("/collections/faq").json()["count"] == len(DOCS)


def test_row5_delete_that_cannot_move_the_folder_leaves_it_usable(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(client)

    def cannot_rename(self: Path, _target: Any) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "rename", cannot_rename)
    body = _assert_error(client.delete("/collections/faq"), 503)
    assert "/" not in body["error"].replace("(SENTSIM_INDEXES_DIR)", "")
    monkeypatch.undo()
    assert client.get("/collections/faq").json()["count"] == len(DOCS)
    hits = client.post("/collections/faq/search", json={"query": "the dog eats food"}).json()
    assert hits["hits"][0]["id"] == "q2"


# --- 6, 7. bounded metadata, filters and responses --------------------------------------


def test_row6_large_metadata_is_refused(client: TestClient) -> None:
    _fill(client)
    doc = {"id": "big", "text": "t", "metadata": {"blob": "x" * 20_000}}
    response = client.post("/collections/faq/documents", json={"documents": [doc]})
    _assert_error(response, 413, "SENTSIM_MAX_METADATA_BYTES", "16384")


def test_row6_search_response_is_bounded(settings: Settings) -> None:
    small = settings.model_copy(update={"max_response_bytes": 4096})
    with TestClient(create_app(small)) as client:
        assert client.post("/collections", json={"name": "faq"}).status_code == 201
        docs = [
            {"id": f"d{i}", "text": d["text"], "metadata": {"pad": "p" * 900}}
            for i, d in enumerate(DOCS)
        ]
        assert (
            client.post("/collections/faq/documents", json={"documents": docs}).status_code == 200
        )
        one = client.post("/collections/faq/search", json={"query": "a dog", "top_k": 2})
        assert one.status_code == 200 and len(one.json()["hits"]) == 2
        many = client.post("/collections/faq/search", json={"queries": ["a dog"] * 8, "top_k": 4})
        _assert_error(many, 413, "SENTSIM_MAX_RESPONSE_BYTES")


@pytest.mark.parametrize(
    ("filter_body", "status", "word"),
    [
        (b'{"query": "a", "filter": {"n": 9223372036854775808}}', 422, "filter.n"),
        (b'{"query": "a", "filter": {"n": -9223372036854775809}}', 422, "filter.n"),
        (b'{"query": "a", "filter": {"lang": "\\ud800"}}', 422, "filter.lang"),
        (
            b'{"query": "a", "filter": {' + b",".join(b'"k%d": 1' % i for i in range(999)) + b"}}",
            413,
            "SENTSIM_MAX_FILTER_KEYS",
        ),
    ],
)
def test_row7_filters_the_store_cannot_run_are_refused(
    client: TestClient, filter_body: bytes, status: int, word: str
) -> None:
    _fill(client)
    response = client.post("/collections/faq/search", content=filter_body, headers=JSON)
    _assert_error(response, status, word)


def test_row7_filter_keys_with_quotes_and_dots_match(client: TestClient) -> None:
    assert client.post("/collections", json={"name": "faq"}).status_code == 201
    docs = [
        {"id": "a", "text": "a dog", "metadata": {'say "hi"': 1, "a.b": "x", "n": 2**62}},
        {"id": "b", "text": "a cat", "metadata": {'say "hi"': 2, "a.b": "y", "n": 1.0}},
    ]
    assert client.post("/collections/faq/documents", json={"documents": docs}).status_code == 200
    for where, ids in [
        ({'say "hi"': 1}, ["a"]),
        ({"a.b": "y"}, ["b"]),
        ({"n": 2**62}, ["a"]),
        ({"n": 1}, ["b"]),
    ]:
        hits = client.post("/collections/faq/search", json={"query": "x", "filter": where})
        assert [h["id"] for h in hits.json()["hits"]] == ids, where


# --- 8. disk full ------------------------------------------------------------------------


def test_row8_upsert_on_a_full_disk_is_507_and_health_degraded(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(client)
    monkeypatch.setattr(DocumentStore, "upsert", _sqlite_full)
    response = client.post("/collections/faq/documents", json={"documents": [{"text": "new"}]})
    _assert_error(response, 507, "disk is full", "SENTSIM_INDEXES_DIR")
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert any("disk is full" in reason for reason in health.json()["reasons"])
    monkeypatch.undo()
    assert (
        client.post("/collections/faq/documents", json={"documents": [{"text": "new"}]}).status_code
        == 200
    )
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/collections/faq").json()["count"] == len(DOCS) + 1


def test_row8_create_on_a_full_disk_leaves_nothing_behind(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FaissIndex, "save", _disk_full)
    body = _assert_error(client.post("/collections", json={"name": "faq"}), 507, "disk is full")
    assert "/srv/secret" not in body["error"]
    assert client.get("/collections/faq").status_code == 404
    assert list(settings.indexes_dir.iterdir()) == []
    monkeypatch.undo()
    _fill(client)


def test_row8_failed_refit_keeps_the_previous_whitening(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(client)
    first = client.post("/collections/faq/whitening", json={"k": 4}).json()
    before = client.post("/collections/faq/search", json={"query": "a dog", "top_k": 4}).json()
    save = Whitening.save

    def save_then_fill_up(self: Whitening, path: Any) -> Path:
        save(self, path)  # the files are half written when the disk fills up
        _disk_full()
        raise AssertionError("unreachable")

    monkeypatch.setattr(Whitening, "save", save_then_fill_up)
    _assert_error(client.post("/collections/faq/whitening", json={"k": 8}), 507, "disk is full")
    monkeypatch.undo()
    assert client.get("/collections/faq").json() == first
    after = client.post("/collections/faq/search", json={"query": "a dog", "top_k": 4}).json()
    assert after == before
    folder = settings.indexes_dir / "faq"
    assert len([p for p in folder.iterdir() if p.name.startswith("whitening")]) == 1


def test_row8_restart_on_a_full_disk_serves_what_is_stored(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(settings)) as client:
        _fill(client)
    (settings.indexes_dir / "faq" / "index.faiss").unlink()  # must be rebuilt and saved
    monkeypatch.setattr(FaissIndex, "save", _disk_full)
    with TestClient(create_app(settings)) as client:
        hits = client.post("/collections/faq/search", json={"query": "the dog eats food"})
        assert hits.json()["hits"][0]["id"] == "q2"
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert any("saving the index" in r for r in health["reasons"]), health


# --- 9. indexes folder not writable at start ---------------------------------------------


def test_row9_server_starts_when_the_indexes_folder_cannot_be_made(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    blocked = settings.model_copy(update={"indexes_dir": tmp_path / "a-file" / "indexes"})
    with TestClient(create_app(blocked)) as client:
        assert client.post("/v1/embeddings", json={"input": "works"}).status_code == 200
        assert client.get("/collections").json() == {"collections": []}
        health = client.get("/health").json()
        assert health["status"] == "degraded" and health["store"] == "read-only"
        body = _assert_error(client.post("/collections", json={"name": "faq"}), 503, "refused")
        assert str(tmp_path) not in body["error"]


# --- 10, 11. names and ids --------------------------------------------------------------


@pytest.mark.parametrize("name", ["abc\n", "abc\r", "ABC", "a" * 65, "a/b", ".."])
def test_row10_names_full_match_their_pattern(client: TestClient, name: str) -> None:
    _assert_error(client.post("/collections", json={"name": name}), 422, "name")


def test_row11_ids_with_slashes_are_reachable(client: TestClient) -> None:
    _fill(client)
    doc = {"id": "dir/sub/doc.md", "text": "a girl sings a song"}
    assert client.post("/collections/faq/documents", json={"documents": [doc]}).status_code == 200
    assert client.get("/collections/faq/documents/dir/sub/doc.md").json()["id"] == doc["id"]
    assert client.get("/collections/faq/documents/dir%2Fsub%2Fdoc.md").status_code == 200
    assert client.delete("/collections/faq/documents/dir/sub/doc.md").status_code == 204
    assert client.get("/collections/faq/documents/dir/sub/doc.md").status_code == 404


@pytest.mark.parametrize("doc_id", [".", "..", "a/../b", "a//b", "/a", "a/", "a\nb"])
def test_row11_unreachable_ids_are_refused(client: TestClient, doc_id: str) -> None:
    _fill(client)
    response = client.post(
        "/collections/faq/documents", json={"documents": [{"id": doc_id, "text": "x"}]}
    )
    _assert_error(response, 422, "id")


# --- 12. error bodies --------------------------------------------------------------------


def test_row12_error_bodies_hold_no_server_paths_or_library_internals(
    client: TestClient, settings: Settings
) -> None:
    (settings.models_dir / "empty").mkdir(parents=True)
    responses = [
        client.post(
            "/similarity",
            json={
                "inputs": {"source_sentence": "a", "sentences": ["b"]},
                "parameters": {"transform": t},
            },
        )
        for t in ("nope", "empty")
    ]
    responses += [
        client.post("/collections", json={"name": "x", "index": i})
        for i in ("IVF2,PQ3", "IVF70000,Flat", "HNSW999")
    ]
    for response in responses:
        assert 400 <= response.status_code < 500, response.text
        text = response.text
        assert str(settings.models_dir.parent) not in text and "/tmp" not in text
        assert ".cpp" not in text and "faiss::" not in text and "Error in" not in text


# --- 13, 14. hosts and keys --------------------------------------------------------------


def test_row13_unknown_host_is_refused(client: TestClient) -> None:
    body = _assert_error(client.get("/info", headers={"Host": "evil.example"}), 400, "Host")
    assert body["error_type"] == "invalid_host"
    assert client.get("/info").status_code == 200


def test_row13_loopback_bind_answers_only_loopback_names(settings: Settings) -> None:
    local = settings.model_copy(update={"allowed_hosts": None, "host": "127.0.0.1"})
    with TestClient(create_app(local), base_url="http://localhost:8000") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/health", headers={"Host": "evil.example"}).status_code == 400
    public = settings.model_copy(update={"allowed_hosts": None, "host": "0.0.0.0"})
    with TestClient(create_app(public)) as client:
        assert client.get("/health", headers={"Host": "sentsim.example"}).status_code == 200


def test_row14_non_ascii_api_key_sent_as_utf8(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_key": SecretStr("clé-秘密")})
    with TestClient(create_app(keyed)) as client:
        good = {"Authorization": "Bearer clé-秘密".encode()}
        assert client.get("/info", headers=good).status_code == 200  # type: ignore[dict-item]
        bad = {"Authorization": "Bearer cle-秘密".encode()}
        assert client.get("/info", headers=bad).status_code == 401  # type: ignore[dict-item]
