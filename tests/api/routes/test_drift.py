"""POST /collections/{name}/compare and GET /collections/{name}/drift (Gaussian distances)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.similarity.gaussian import Gaussian, gaussian_distances

DOCS = [
    "a man plays a guitar",
    "the dog eats food",
    "a woman slices tomatoes",
    "children running on the beach",
    "a cat sleeps on the sofa",
    "the horse rides in the park",
]
OTHER = ["stocks fell sharply", "the bank raised rates", "a song on the radio", "food prices"]


def _collection(client: TestClient, name: str, texts: list[str]) -> None:
    assert client.post("/collections", json={"name": name}).status_code == 201
    if texts:
        docs = [{"text": t} for t in texts]
        response = client.post(f"/collections/{name}/documents", json={"documents": docs})
        assert response.status_code == 200, response.json()


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_compare_equals_the_distances_of_the_encoded_sets(client: TestClient, tiny_encoder) -> None:  # type: ignore[no-untyped-def]
    _collection(client, "faq", DOCS)
    _collection(client, "news", OTHER)
    got = client.post("/collections/faq/compare", json={"against": "news"}).json()
    mine = Gaussian.fit(_unit(tiny_encoder.encode(DOCS)))
    theirs = Gaussian.fit(_unit(tiny_encoder.encode(OTHER)))
    want = gaussian_distances(mine, theirs)
    assert got["n"] == len(DOCS) and got["reference_n"] == len(OTHER)
    for key in ("w2", "kl", "bhattacharyya"):
        assert got[key] == pytest.approx(getattr(want, key), rel=1e-3), key
    assert got["w2"] > 0
    same = client.post("/collections/faq/compare", json={"against": "faq"}).json()
    assert same["w2"] == pytest.approx(0, abs=1e-4) and same["kl"] == pytest.approx(0, abs=1e-6)


def test_compare_errors(client: TestClient) -> None:
    _collection(client, "faq", DOCS)
    _collection(client, "empty", [])
    for against, status in (("empty", 409), ("missing", 404), ("Bad Name", 422)):
        response = client.post("/collections/faq/compare", json={"against": against})
        assert response.status_code == status, (against, response.json())
    assert client.post("/collections/missing/compare", json={"against": "faq"}).status_code == 404


def test_drift_of_recent_queries_from_the_documents(client: TestClient, tiny_encoder) -> None:  # type: ignore[no-untyped-def]
    _collection(client, "faq", DOCS)
    response = client.get("/collections/faq/drift")
    assert response.status_code == 409 and "search it first" in response.json()["error"]
    queries = ["a man plays music", "a dog eats", "stocks fell", "rates rose sharply"]
    for q in queries:
        assert client.post("/collections/faq/search", json={"query": q}).status_code == 200
    got = client.get("/collections/faq/drift").json()
    want = gaussian_distances(
        Gaussian.fit(_unit(tiny_encoder.encode(queries))),
        Gaussian.fit(_unit(tiny_encoder.encode(DOCS))),
    )
    assert got["n"] == len(queries) and got["reference_n"] == len(DOCS)
    assert got["w2"] == pytest.approx(want.w2, rel=1e-3)
    assert got["kl"] == pytest.approx(want.kl, rel=1e-3)
    metrics = client.get("/metrics").text
    assert 'sentsim_query_drift_w2{collection="faq"}' in metrics
    # a deleted and re-created collection starts a new window
    assert client.delete("/collections/faq").status_code == 204
    _collection(client, "faq", DOCS)
    assert client.get("/collections/faq/drift").status_code == 409
