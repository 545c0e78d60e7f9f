"""POST /collections/{name}/clusters and /duplicates on the tiny BERT."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.encoding.bert import BertEncoder
from app.similarity import clustering
from app.similarity.clustering import duplicate_pairs, threshold_clusters
from tests.api.conftest import BACKENDS

TEXTS = [
    "the man plays a guitar",
    "the man plays a guitar",  # an exact duplicate
    "a man playing the guitar",
    "the dog eats food",
    "a dog eating food",
    "two girls sing a song",
    "the girl sings",
    "stocks fell sharply",
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both vector backends."""
    return str(request.param)


def _collection(client: TestClient, index: str = "flat") -> list[str]:
    assert client.post("/collections", json={"name": "faq", "index": index}).status_code == 201
    docs = [{"id": f"d{i}", "text": t} for i, t in enumerate(TEXTS)]
    response = client.post("/collections/faq/documents", json={"documents": docs})
    assert response.status_code == 200, response.json()
    return [d["id"] for d in docs]


def _reference(tiny_encoder: BertEncoder, k: int) -> tuple[np.ndarray, ...]:
    x = tiny_encoder.encode(TEXTS)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return x, order, np.take_along_axis(sims, order, 1).astype(np.float32)


def test_threshold_clusters_of_a_collection(client: TestClient, tiny_encoder: BertEncoder) -> None:
    ids = _collection(client)
    body = {"method": "threshold", "k": 7, "threshold": 0.8, "min_size": 2}
    got = client.post("/collections/faq/clusters", json=body)
    assert got.status_code == 200, got.json()
    x, neighbors, scores = _reference(tiny_encoder, k=7)
    want = threshold_clusters(neighbors, scores, x, threshold=0.8, min_size=2)
    assert {frozenset(c["members"]) for c in got.json()["clusters"]} == {
        frozenset(ids[i] for i in c) for c in want.clusters
    }
    assert got.json()["unclustered"] == want.unclustered and got.json()["method"] == "threshold"
    for cluster in got.json()["clusters"]:
        assert cluster["size"] == len(cluster["members"])
        assert cluster["representative"] in cluster["members"]


@pytest.mark.skipif(not clustering.infomap_available(), reason="infomap not installed")
def test_infomap_clusters_of_a_collection(client: TestClient) -> None:
    _collection(client, index="hnsw")
    got = client.post("/collections/faq/clusters", json={"threshold": 0.5}).json()
    assert got["method"] == "infomap" and got["codelength"] > 0 and got["note"] is None
    members = [m for c in got["clusters"] for m in c["members"]]
    assert len(members) == len(set(members)) and set(members) <= {f"d{i}" for i in range(8)}
    assert len(members) + got["unclustered"] == len(TEXTS)
    together = [c for c in got["clusters"] if "d0" in c["members"]]
    assert together and "d1" in together[0]["members"]  # the exact duplicate


def test_infomap_missing_falls_back_to_threshold(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _collection(client)
    monkeypatch.setattr("app.services.clustering.infomap_available", lambda: False)
    got = client.post("/collections/faq/clusters", json={"method": "infomap"}).json()
    assert got["method"] == "threshold" and "pip install" in got["note"]


def test_duplicates_equal_brute_force(client: TestClient, tiny_encoder: BertEncoder) -> None:
    ids = _collection(client)
    got = client.post("/collections/faq/duplicates", json={"threshold": 0.85, "k": 7}).json()
    _, neighbors, scores = _reference(tiny_encoder, k=7)
    pairs, want = duplicate_pairs(neighbors, scores, threshold=0.85)
    assert got["total"] == len(pairs) > 0
    # d0 and d1 are the same text, so their pairs with others tie: compare pair -> score
    got_scores = {frozenset((p["a"], p["b"])): p["score"] for p in got["pairs"]}
    want_scores = {frozenset((ids[a], ids[b])): w for (a, b), w in zip(pairs, want, strict=True)}
    assert got_scores.keys() == want_scores.keys()
    for pair, score in want_scores.items():
        assert got_scores[pair] == pytest.approx(score, abs=1e-4)
    assert all(np.diff([p["score"] for p in got["pairs"]]) <= 1e-6)  # best first
    assert {got["pairs"][0]["a"], got["pairs"][0]["b"]} == {"d0", "d1"}
    assert got["pairs"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    limited = client.post("/collections/faq/duplicates", json={"threshold": 0.85, "limit": 1})
    assert len(limited.json()["pairs"]) == 1 and limited.json()["total"] == got["total"]


def test_deleted_documents_leave_the_graph(client: TestClient) -> None:
    _collection(client, index="hnsw")  # HNSW cannot remove: its stale ids are skipped
    assert client.delete("/collections/faq/documents/d1").status_code == 204
    got = client.post("/collections/faq/duplicates", json={"threshold": 0.0, "k": 7}).json()
    assert "d1" not in {i for p in got["pairs"] for i in (p["a"], p["b"])}
    clusters = client.post("/collections/faq/clusters", json={"method": "threshold"}).json()
    assert "d1" not in {m for c in clusters["clusters"] for m in c["members"]}


def test_errors(client: TestClient) -> None:
    assert client.post("/collections/missing/clusters").status_code == 404
    assert client.post("/collections/missing/duplicates").status_code == 404
    client.post("/collections", json={"name": "empty"})
    empty = client.post("/collections/empty/clusters", json={"method": "threshold"}).json()
    assert empty["clusters"] == [] and empty["unclustered"] == 0
    assert client.post("/collections/empty/duplicates").json() == {"pairs": [], "total": 0}
    for body in ({"method": "kmeans"}, {"k": 0}, {"k": 1000}, {"threshold": 2}, {"min_size": 0}):
        response = client.post("/collections/empty/clusters", json=body)
        assert response.status_code == 422, body
    assert client.post("/collections/empty/duplicates", json={"limit": 0}).status_code == 422


def test_the_graph_is_searched_chunk_by_chunk(
    client: TestClient, tiny_encoder: BertEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.index.collection._NEIGHBOR_CHUNK", 3)  # 8 documents: 3 chunks
    ids = _collection(client)
    got = client.post("/collections/faq/duplicates", json={"threshold": -1.0, "k": 7}).json()
    _, neighbors, scores = _reference(tiny_encoder, k=7)
    pairs, _ = duplicate_pairs(neighbors, scores, threshold=-1.0)
    assert got["total"] == len(pairs) == 28  # every pair of 8, each once
    assert {frozenset((p["a"], p["b"])) for p in got["pairs"]} == {
        frozenset((ids[a], ids[b])) for a, b in pairs
    }


def test_a_refit_during_the_search_is_a_conflict(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    _collection(client)
    collection = client.app.state.services.collections.get("faq")  # type: ignore[attr-defined]
    searcher = collection.index if backend == "faiss" else collection.client
    search = searcher.search

    def refit_first(*args: object, **kwargs: object) -> object:
        collection.transform = object()  # what a concurrent refit does, before the next chunk
        return search(*args, **kwargs)

    module = "collection" if backend == "faiss" else "milvus_collection"
    monkeypatch.setattr(f"app.index.{module}._NEIGHBOR_CHUNK", 3)
    monkeypatch.setattr(searcher, "search", refit_first)
    response = client.post("/collections/faq/duplicates")
    assert response.status_code == 409 and "ask again" in response.json()["error"]
