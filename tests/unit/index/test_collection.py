"""The VectorCollection contract, run on both backends: Collection (SQLite + FAISS) and
MilvusCollection (Milvus Lite, a file per test). Numbers are checked against brute force."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.core.errors import ConflictError, NotFoundError
from app.index.base import CollectionCatalog, VectorCollection, VectorTransform
from app.index.catalog import FolderCatalog
from app.index.store import Document
from app.transforms.whitening import Whitening

Make = Callable[..., VectorCollection]
D = 6


@pytest.fixture(params=["faiss", "milvus"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CollectionCatalog]:
    """The backend's catalog, started: a folder, or a fresh database of the session's Milvus
    Lite server."""
    made: CollectionCatalog
    if request.param == "milvus":
        pytest.importorskip("pymilvus", reason="the milvus extra: pip install sentsim[milvus]")
        from app.index.milvus_catalog import MilvusCatalog

        made = MilvusCatalog(request.getfixturevalue("milvus_uri"))
    else:
        made = FolderCatalog(tmp_path / "indexes")
    made.start()
    yield made
    made.close()


@pytest.fixture
def make(catalog: CollectionCatalog) -> Make:
    """``make(name="faq", index="flat", transform=None)``: a new collection on the backend."""

    def build(
        name: str = "faq", index: str = "flat", transform: VectorTransform | None = None
    ) -> VectorCollection:
        meta = {"name": name, "index": index, "dimension": D, "model": "m", "pooling": "mean"}
        return catalog.create(meta, transform)

    return build


def _no_named_transform(_meta: Mapping[str, Any]) -> None:
    return None


def _documents(n: int, seed: int = 0) -> tuple[list[Document], np.ndarray]:
    raw = np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)
    topics = ["music", "food", "geo"]
    documents = [
        Document(f"d{i}", f"text {i}", {"topic": topics[i % 3], "n": i, "flag": i % 2 == 0})
        for i in range(n)
    ]
    return documents, raw


def _same(got: Document | None, want: Document) -> bool:
    return got is not None and (got.id, got.text, got.metadata) == (
        want.id,
        want.text,
        want.metadata,
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_upsert_get_replace_delete_count(make: Make) -> None:
    collection = make()
    documents, raw = _documents(5)
    assert collection.upsert(documents, raw) == [d.id for d in documents]
    assert collection.count() == 5
    assert _same(collection.get("d1"), documents[1])
    replaced = Document("d1", "new text", {"topic": "other"})
    generation = collection.generation
    collection.upsert([replaced], raw[:1])
    assert collection.generation > generation
    assert _same(collection.get("d1"), replaced) and collection.count() == 5
    collection.delete("d1")
    assert collection.get("d1") is None and collection.count() == 4
    with pytest.raises(NotFoundError):
        collection.delete("d1")


def test_raw_vectors_come_back_as_stored(make: Make) -> None:
    collection = make()
    documents, raw = _documents(10)
    collection.upsert(documents, raw)
    with collection.exclusive("reading"):
        batches = list(collection.iter_raw_vectors(batch=4))
    assert sum(len(b) for b in batches) == 10
    got = np.concatenate(batches)  # raw, not normalised; in some order
    np.testing.assert_allclose(got[np.lexsort(got.T)], raw[np.lexsort(raw.T)], rtol=1e-6)


def test_search_matches_brute_force(make: Make) -> None:
    collection = make()
    documents, raw = _documents(30)
    collection.upsert(documents, raw)
    queries = raw[:3] + 0.1
    expected = np.argsort(-(_unit(queries) @ _unit(raw).T), axis=1)[:, :5]
    results = collection.search(queries, 5)
    for hits, want in zip(results, expected, strict=True):
        assert [h.id for h in hits] == [f"d{i}" for i in want]
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
    hit = results[0][0]
    assert hit.text == documents[int(hit.id[1:])].text
    assert collection.ids_of([h.seq for h in results[0]]) == {h.seq: h.id for h in results[0]}


@pytest.mark.parametrize(
    "where",
    [
        {"topic": "food"},
        {"topic": "food", "flag": True},
        {"n": 4},
        {"flag": 1},  # a number never matches a boolean
        {"topic": 'qu"ote\\d'},
        {"missing": None},
    ],
)
def test_filters_have_the_stores_semantics(make: Make, where: dict[str, Any]) -> None:
    collection = make()
    documents, raw = _documents(30)
    documents[7] = Document("d7", "text 7", {"topic": 'qu"ote\\d', "n": 7, "flag": False})
    collection.upsert(documents, raw)
    allowed = [
        i
        for i, d in enumerate(documents)
        if all(
            k in d.metadata and d.metadata[k] == v and type(d.metadata[k]) is type(v)
            for k, v in where.items()
        )
    ]
    hits = collection.search(raw[:1], 10, where)[0]
    scores = _unit(raw[allowed]) @ _unit(raw[0])
    expected = [f"d{allowed[i]}" for i in np.argsort(-scores)[:10]]
    assert [h.id for h in hits] == expected


def test_neighbors_match_brute_force(make: Make) -> None:
    collection = make()
    documents, raw = _documents(25)
    collection.upsert(documents, raw)
    seqs, vectors, neighbors, scores = collection.neighbors(4)
    ids = collection.ids_of(seqs)
    order = [int(ids[int(s)][1:]) for s in seqs]  # document index of each row
    np.testing.assert_allclose(vectors, _unit(raw[order]), atol=1e-6)
    similarity = _unit(raw[order]) @ _unit(raw[order]).T
    np.fill_diagonal(similarity, -np.inf)
    np.testing.assert_array_equal(neighbors, np.argsort(-similarity, axis=1)[:, :4])
    np.testing.assert_allclose(scores, np.sort(similarity, axis=1)[:, ::-1][:, :4], atol=1e-5)


def test_retransform_reindexes_in_the_new_space_and_keeps_the_whitening(
    catalog: CollectionCatalog, make: Make
) -> None:
    collection = make()
    documents, raw = _documents(20)
    collection.upsert(documents, raw)
    whitening = Whitening(3, model="m", pooling="mean").fit(raw)
    collection.retransform(whitening, {"whitening": {"n_components": 3}})
    assert collection.vector_dimension == 3 and collection.meta["whitening"]["n_components"] == 3
    assert collection.count() == 20
    space = _unit(whitening.transform(raw))
    expected = np.argsort(-(space @ space[0]))[:5]
    assert [h.id for h in collection.search(raw[:1], 5)[0]] == [f"d{i}" for i in expected]
    collection.close()
    reopened = catalog.open("faq", _no_named_transform)  # the whitening was saved with it
    assert reopened.transform is not None
    np.testing.assert_array_equal(reopened.transform.transform(raw), whitening.transform(raw))
    assert [h.id for h in reopened.search(raw[:1], 5)[0]] == [f"d{i}" for i in expected]
    assert reopened.meta["whitening"] == {"n_components": 3}


def test_destroyed_collections_refuse_everything(make: Make) -> None:
    collection = make()
    documents, raw = _documents(3)
    collection.upsert(documents, raw)
    collection.destroy()
    assert collection.closed
    for call in (collection.count, lambda: collection.get("d0"), lambda: collection.delete("d0")):
        with pytest.raises(NotFoundError):
            call()
    again = make()  # the name is free again, and the new one is empty
    assert again.count() == 0


def test_a_taken_name_is_a_conflict(catalog: CollectionCatalog, make: Make) -> None:
    first = make()
    with pytest.raises(ConflictError):
        make()
    documents, raw = _documents(4)
    first.upsert(documents, raw)
    assert catalog.names() == ["faq"] and catalog.revision("faq") is not None
    assert catalog.revision("other") is None


@pytest.mark.parametrize("catalog", ["milvus"], indirect=True)
def test_another_instance_sees_the_writes_on_milvus(catalog: CollectionCatalog, make: Make) -> None:
    first = make()
    documents, raw = _documents(4)
    first.upsert(documents, raw)
    reopened = catalog.open("faq", _no_named_transform)  # another replica's view
    assert reopened.count() == 4 and _same(reopened.get("d2"), documents[2])


def test_a_failed_registration_leaves_no_collection_behind_on_milvus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pymilvus")
    from pymilvus import MilvusException

    from app.core.errors import StorageError
    from app.index import milvus_catalog, milvus_registry

    catalog = milvus_catalog.MilvusCatalog(str(tmp_path / "milvus.db"))
    catalog.start()

    def refuse(*_: object) -> None:
        raise MilvusException(code=1, message="registry unavailable")

    monkeypatch.setattr(milvus_catalog, "register", refuse)
    with pytest.raises(StorageError, match="registry unavailable"):
        catalog.create({"name": "faq", "index": "flat", "dimension": D}, None)
    bookkeeping = [milvus_registry.REGISTRY, milvus_registry.BLOBS]
    assert sorted(catalog.client.list_collections()) == sorted(bookkeeping)
    assert catalog.names() == []
    catalog.close()


@pytest.mark.parametrize("catalog", ["milvus"], indirect=True)
def test_a_refit_keeps_what_other_replicas_write_meanwhile_on_milvus(
    catalog: CollectionCatalog, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica A refits while replica B (its own instance, still on the old physical
    collection) writes: what B wrote before the switch is caught up; a write after it is refused
    with ``ConflictError`` (B's client retries, on the new collection)."""
    from app.index import milvus_collection

    a = make()
    documents, raw = _documents(12)
    a.upsert(documents[:10], raw[:10])
    b = catalog.open("faq", _no_named_transform)
    register = milvus_collection.register

    def b_writes_first(*args: Any) -> None:  # between A's copy and A's switch
        b.upsert(documents[10:11], raw[10:11])
        b.delete("d0")
        register(*args)

    monkeypatch.setattr(milvus_collection, "register", b_writes_first)
    a.retransform(Whitening(3, model="m", pooling="mean").fit(raw), {})
    monkeypatch.undo()
    assert a.get("d10") is not None and a.get("d0") is None and a.count() == 10
    with pytest.raises(ConflictError, match="retry"):
        b.upsert(documents[11:12], raw[11:12])  # B has not seen the switch yet
    again = catalog.open("faq", _no_named_transform)  # B's retry, after re-reading
    again.upsert(documents[11:12], raw[11:12])
    assert a.get("d11") is not None and a.count() == 11
    space = _unit(a.prepare(raw[11:12]))
    assert a.search(raw[11:12], 1)[0][0].id == "d11" and space.shape == (1, 3)
