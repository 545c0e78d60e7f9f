"""DocumentStore: upserts, filters, vectors, durability across reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import InputValidationError
from app.index.store import Document, DocumentStore


@pytest.fixture
def store(tmp_path: Path) -> DocumentStore:
    return DocumentStore(tmp_path / "store.sqlite")


def _vectors(n: int) -> np.ndarray:
    return np.arange(n * 4, dtype=np.float32).reshape(n, 4)


def test_upsert_get_replace(store: DocumentStore) -> None:
    seqs, replaced = store.upsert([Document("a", "x", {"k": 1}), Document("b", "y")], _vectors(2))
    assert replaced == [] and len(set(seqs)) == 2 and store.count() == 2
    new_seqs, replaced = store.upsert([Document("a", "x2", {"k": 2})], _vectors(1))
    assert replaced == [seqs[0]] and new_seqs[0] > max(seqs)  # a replacement gets a new seq
    doc = store.get("a")
    assert doc is not None and (doc.text, doc.metadata, doc.seq) == ("x2", {"k": 2}, new_seqs[0])
    assert store.count() == 2 and store.get("zzz") is None


def test_delete(store: DocumentStore) -> None:
    (seq,), _ = store.upsert([Document("a", "x")], _vectors(1))
    assert store.delete("a") == seq and store.delete("a") is None and store.count() == 0


def test_filter_seqs(store: DocumentStore) -> None:
    docs = [
        Document("1", "t", {"lang": "en", "n": 1, "ok": True}),
        Document("2", "t", {"lang": "fr", "n": 2, "ok": False}),
        Document("3", "t", {"lang": "en", "n": 2, "ok": None, "a.b": "dot"}),
    ]
    seqs, _ = store.upsert(docs, _vectors(3))
    by_id = dict(zip("123", seqs, strict=True))

    def ids(where: dict) -> set[str]:  # type: ignore[type-arg]
        found = set(store.filter_seqs(where).tolist())
        return {k for k, v in by_id.items() if v in found}

    assert ids({"lang": "en"}) == {"1", "3"}
    assert ids({"lang": "en", "n": 2}) == {"3"}
    assert ids({"ok": True}) == {"1"} and ids({"ok": False}) == {"2"}
    assert ids({"ok": None}) == {"3"} and ids({"a.b": "dot"}) == {"3"}
    assert ids({"missing": "x"}) == set()
    # A number never matches a boolean (SQLite's json_extract reads true as 1), nor a string.
    assert ids({"ok": 1}) == set() and ids({"ok": 0}) == set()
    assert ids({"n": 1.0}) == {"1"} and ids({"n": "1"}) == set()
    with pytest.raises(InputValidationError):
        store.filter_seqs({"lang": ["en"]})  # type: ignore[dict-item]


def test_vectors_round_trip_in_batches(store: DocumentStore) -> None:
    vectors = _vectors(10)
    seqs, _ = store.upsert([Document(str(i), "t") for i in range(10)], vectors)
    batches = list(store.iter_vectors(batch=3))
    assert [len(b[0]) for b in batches] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), seqs)
    np.testing.assert_array_equal(np.vstack([b[1] for b in batches]), vectors)
    (chosen,) = list(store.iter_vectors(seqs=[seqs[7], seqs[2]]))
    np.testing.assert_array_equal(chosen[1], vectors[[2, 7]])


def test_committed_writes_survive_reopen(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.sqlite")
    store.set_meta(name="c", index="flat")
    store.upsert([Document("a", "x", {"k": 1})], _vectors(1))
    del store  # no close: as after a crash
    again = DocumentStore(tmp_path / "s.sqlite")
    assert again.count() == 1 and again.get_meta() == {"name": "c", "index": "flat"}


def test_read_only_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    writer = DocumentStore(tmp_path / "s.sqlite")
    writer.upsert([Document("a", "text", {"k": 1})], np.ones((1, 4), np.float32))
    writer.close()
    reader = DocumentStore(tmp_path / "s.sqlite", read_only=True)
    assert reader.get("a") == Document("a", "text", {"k": 1}, 1)
    assert reader.sizes([1, 99]) == {1: len("text") + len('{"k": 1}')}
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.upsert([Document("b", "x")], np.ones((1, 4), np.float32))
    reader.close()
    with pytest.raises(sqlite3.Error):
        DocumentStore(tmp_path / "missing.sqlite", read_only=True)


@pytest.mark.parametrize(
    "key", ["lang", "a.b", "a[0]", "$k", "中文", "é ü", "a\\b", 'say "hi"', ""]
)
def test_filters_name_any_top_level_key(tmp_path: Path, key: str) -> None:
    store = DocumentStore(tmp_path / "s.sqlite")
    docs = [Document("a", "t", {key: 1, "n": None}), Document("b", "t", {key: "1", "n": True})]
    store.upsert(docs, np.ones((2, 4), np.float32))
    assert store.filter_seqs({key: 1}).tolist() == [1]
    assert store.filter_seqs({key: 1.0}).tolist() == [1]
    assert store.filter_seqs({key: "1"}).tolist() == [2]
    assert store.filter_seqs({key: "1", "n": True}).tolist() == [2]
    assert store.filter_seqs({key: 1, "n": None}).tolist() == [1]
    assert store.filter_seqs({key: 2}).tolist() == []
    store.close()
