"""CollectionService with the tiny BERT: persistence, crash recovery, whitening, filters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import ConflictError, InputValidationError, NotFoundError, NotReadyError
from app.encoding.bert import BertEncoder
from app.index.base import CollectionCatalog
from app.index.catalog import FolderCatalog
from app.index.collection import INDEX_FILE
from app.index.store import Document, DocumentStore
from app.services.batching import MicroBatcher
from app.services.collections import CollectionService
from app.services.inference import InferenceGateway
from app.services.limits import Limits
from app.services.search import SearchService

SENTENCES = [
    "a man plays a guitar",
    "the dog eats food",
    "two people are sitting in the park",
    "a woman slices tomatoes",
    "children running on the beach",
    "the cat sits on the house",
    "a boy rides a horse",
    "a girl sings a song",
]


class Harness:
    """A CollectionService over the tiny encoder on its own event loop."""

    def __init__(self, root: Path | CollectionCatalog, encoder: BertEncoder) -> None:
        self.loop = asyncio.new_event_loop()
        self.batcher = MicroBatcher(encoder.encode_with_lengths, max_wait_ms=1)
        self.loop.run_until_complete(self._start())
        inference = InferenceGateway(encoder, self.batcher)
        catalog = FolderCatalog(root) if isinstance(root, Path) else root
        self.service = CollectionService(catalog, inference, Limits(max_top_k=20))
        self.service.open_all()
        self.search = SearchService(self.service, inference, Limits(max_top_k=20))

    async def _start(self) -> None:
        self.batcher.start()

    def run(self, coroutine):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coroutine)

    def crash(self) -> None:
        """Stop without checkpointing the indexes (as after SIGKILL)."""
        self.run(self.batcher.stop())
        self.loop.close()

    def close(self) -> None:
        self.service.close()
        self.crash()


@pytest.fixture
def harness(tmp_path: Path, tiny_encoder: BertEncoder) -> Iterator[Harness]:
    h = Harness(tmp_path / "indexes", tiny_encoder)
    yield h
    if not h.loop.is_closed():
        h.close()


def _fill(h: Harness, name: str = "c", index: str = "flat") -> list[str]:
    h.service.create(name, index)
    docs = [Document(f"d{i}", s, {"i": i, "even": i % 2 == 0}) for i, s in enumerate(SENTENCES)]
    return h.run(h.service.upsert(name, docs)).ids


def _top_ids(h: Harness, name: str, queries: list[str], k: int = 3) -> list[list[str]]:
    return [[hit.id for hit in hits] for hits in h.run(h.search.search(name, queries, k)).results]


def test_each_document_is_its_own_nearest_neighbour(harness: Harness) -> None:
    ids = _fill(harness)
    assert _top_ids(harness, "c", SENTENCES, 1) == [[i] for i in ids]


def test_search_equals_brute_force_cosine(harness: Harness, tiny_encoder: BertEncoder) -> None:
    _fill(harness)
    hits = harness.run(harness.search.search("c", ["a dog eats"], 5)).results[0]
    docs, query = tiny_encoder.encode(SENTENCES), tiny_encoder.encode(["a dog eats"])
    cosine = (docs @ query[0]) / np.linalg.norm(docs, axis=1) / np.linalg.norm(query[0])
    order = np.argsort(-cosine)[:5]
    assert [h.id for h in hits] == [f"d{i}" for i in order]
    np.testing.assert_allclose([h.score for h in hits], cosine[order], atol=1e-4)


def test_filter_and_replace(harness: Harness) -> None:
    _fill(harness)
    hits = harness.run(harness.search.search("c", ["a man"], 10, {"even": True})).results[0]
    assert {h.id for h in hits} == {"d0", "d2", "d4", "d6"}
    harness.run(harness.service.upsert("c", [Document("d0", "a girl sings a song", {"i": 0})]))
    assert harness.service.info("c")["count"] == len(SENTENCES)
    assert harness.service.get_document("c", "d0").text == "a girl sings a song"
    top = harness.run(harness.search.search("c", ["a girl sings a song"], 2)).results[0]
    assert {h.id for h in top} == {"d0", "d7"}  # the old text of d0 is gone from the index


def test_crash_loses_no_acknowledged_document(
    harness: Harness, tmp_path: Path, tiny_encoder: BertEncoder
) -> None:
    _fill(harness)  # the index file holds only the empty index saved at creation
    before = _top_ids(harness, "c", SENTENCES)
    harness.run(harness.service.upsert("c", [Document("late", "a late document")]))
    harness.service.delete_document("c", "d1")
    expected = _top_ids(harness, "c", SENTENCES)
    harness.crash()
    reopened = Harness(tmp_path / "indexes", tiny_encoder)
    try:
        assert reopened.service.info("c")["count"] == len(SENTENCES)
        assert _top_ids(reopened, "c", SENTENCES) == expected != before
        assert reopened.service.get_document("c", "late").text == "a late document"
    finally:
        reopened.close()


def test_missing_or_corrupt_index_file_is_rebuilt(
    harness: Harness, tmp_path: Path, tiny_encoder: BertEncoder
) -> None:
    _fill(harness, index="hnsw")
    expected = _top_ids(harness, "c", SENTENCES)
    harness.close()
    (tmp_path / "indexes" / "c" / INDEX_FILE).write_bytes(b"corrupt")
    reopened = Harness(tmp_path / "indexes", tiny_encoder)
    try:
        assert _top_ids(reopened, "c", SENTENCES) == expected
    finally:
        reopened.close()


def test_whitening_refit_rebuilds_without_reencoding(
    harness: Harness, tmp_path: Path, tiny_encoder: BertEncoder
) -> None:
    _fill(harness)
    info = harness.run(harness.service.refit_whitening("c", n_components=4, beta=0.0, gamma=0.0))
    assert info["dimension"] == 4 and info["transform"]["n_components"] == 4
    assert info["transform"]["n_fitted"] == len(SENTENCES)
    assert _top_ids(harness, "c", SENTENCES, 1) == [[f"d{i}"] for i in range(len(SENTENCES))]
    harness.close()
    reopened = Harness(tmp_path / "indexes", tiny_encoder)
    try:
        assert reopened.service.info("c")["transform"]["beta"] == 0.0
        assert reopened.service.info("c")["dimension"] == 4
    finally:
        reopened.close()


def test_ivf_collection_trains_once_it_has_enough_documents(harness: Harness) -> None:
    _fill(harness, index="IVF2,Flat")
    assert harness.service.get("c").index.exact_fallback is False
    assert _top_ids(harness, "c", SENTENCES[:2], 1) == [["d0"], ["d1"]]


def test_names_conflicts_and_unknowns(harness: Harness) -> None:
    harness.service.create("c")
    with pytest.raises(ConflictError):
        harness.service.create("c")
    with pytest.raises(InputValidationError, match=r"\[a-z0-9_-\]"):
        harness.service.create("../etc")
    with pytest.raises(NotFoundError):
        harness.service.info("nope")
    with pytest.raises(NotFoundError):
        harness.service.delete_document("c", "nope")
    harness.service.delete("c")
    assert harness.service.list_collections() == []


def test_collection_of_another_model_is_listed_unavailable(
    tmp_path: Path, tiny_encoder: BertEncoder, harness: Harness
) -> None:
    _fill(harness)
    harness.close()
    other = tiny_encoder.with_pooling("cls")
    reopened = Harness(tmp_path / "indexes", other)  # type: ignore[arg-type]
    try:
        info = reopened.service.info("c")
        assert info["status"] == "unavailable" and "pooling 'mean'" in info["reason"]
        with pytest.raises(NotReadyError, match="unavailable"):
            reopened.run(reopened.search.search("c", ["a dog"]))
        assert any("'c' unavailable" in r for r in reopened.service.health())
    finally:
        reopened.close()


def test_start_up_is_never_hostage_to_one_collection(
    tmp_path: Path, tiny_encoder: BertEncoder, harness: Harness
) -> None:
    """A damaged store, an index description that is no longer accepted and a collection of
    another model are each listed as unavailable; the healthy one opens and works."""
    for name in ("good", "damaged", "legacy"):
        _fill(harness, name)
    harness.close()
    root = tmp_path / "indexes"
    (root / "damaged" / "store.sqlite").write_bytes(b"this is not a database" * 100)
    for leftover in (root / "damaged").glob("store.sqlite-*"):
        leftover.unlink()
    store = DocumentStore(root / "legacy" / "store.sqlite")
    store.set_meta(index="NSG32")  # created before the index grammar existed
    store.close()
    reopened = Harness(root, tiny_encoder)
    try:
        infos = {i["name"]: i for i in reopened.service.list_collections()}
        assert infos["good"]["status"] == "ready" and infos["good"]["count"] == len(SENTENCES)
        assert infos["damaged"]["status"] == infos["legacy"]["status"] == "unavailable"
        assert "accepted" in infos["legacy"]["reason"]
        assert "/" not in infos["damaged"]["reason"]
        assert _top_ids(reopened, "good", SENTENCES[:1], 1) == [["d0"]]
        assert len(reopened.service.health()) == 2
        reopened.service.delete("damaged")  # an unavailable collection can still be removed
        assert "damaged" not in {i["name"] for i in reopened.service.list_collections()}
        assert not (root / "damaged").exists()
    finally:
        reopened.close()


def test_a_deleted_collection_refuses_every_operation(harness: Harness) -> None:
    """Requests that got the collection before a delete finish with NotFoundError (404), not
    with the closed store's error."""
    _fill(harness)
    collection = harness.service.get("c")
    harness.service.delete("c")
    raw = np.zeros((1, collection.vector_dimension), np.float32)
    for call in (
        lambda: collection.search(raw, 3),
        lambda: collection.upsert([Document("x", "text")], raw),
        lambda: collection.delete("d0"),
        lambda: collection.get("d0"),
        collection.count,
    ):
        with pytest.raises(NotFoundError, match="was deleted"):
            call()


def test_replicas_on_one_milvus_see_each_others_changes_at_once(
    tmp_path: Path, tiny_encoder: BertEncoder
) -> None:
    """Two services on one Milvus registry, as two replicas behind a load balancer: nothing
    either caches may go stale (the registry is read on every access)."""
    pytest.importorskip("pymilvus", reason="the milvus extra: pip install sentsim[milvus]")
    from app.index.milvus_catalog import MilvusCatalog

    catalog = MilvusCatalog(str(tmp_path / "milvus.db"))  # one connection, two services
    a, b = Harness(catalog, tiny_encoder), Harness(catalog, tiny_encoder)
    try:
        ids = _fill(a)
        assert b.service.info("c")["count"] == len(ids)  # created and written on a
        assert _top_ids(b, "c", [SENTENCES[2]]) == _top_ids(a, "c", [SENTENCES[2]])
        info = b.run(b.service.refit_whitening("c", n_components=4))  # refitted on b
        assert info["dimension"] == 4
        assert a.service.get("c").vector_dimension == 4  # a reloaded it, whitening included
        assert _top_ids(a, "c", [SENTENCES[5]], k=8) == _top_ids(b, "c", [SENTENCES[5]], k=8)
        a.service.delete("c")
        with pytest.raises(NotFoundError):
            b.service.get("c")
        assert b.service.list_collections() == []
        a.service.create("c", "hnsw")  # re-created under the same name: b sees the new one
        assert b.service.info("c")["count"] == 0 and b.service.info("c")["index"] == "hnsw"
    finally:
        b.crash()  # the shared catalog is closed once, by a
        a.close()
