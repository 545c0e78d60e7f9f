"""Collection routes: CRUD, documents, search, whitening, persistence across restarts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.api.conftest import BACKENDS

DOCS = [
    {"id": "q1", "text": "a man plays a guitar", "metadata": {"lang": "en", "n": 1}},
    {"id": "q2", "text": "the dog eats food", "metadata": {"lang": "en", "n": 2}},
    {"id": "q3", "text": "a woman slices tomatoes", "metadata": {"lang": "fr", "n": 3}},
    {"id": "q4", "text": "children running on the beach", "metadata": {"lang": "fr", "n": 4}},
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both vector backends."""
    return str(request.param)


def _create(client: TestClient, name: str = "faq", **extra: object) -> None:
    response = client.post("/collections", json={"name": name, **extra})
    assert response.status_code == 201, response.json()
    assert client.post(f"/collections/{name}/documents", json={"documents": DOCS}).json() == {
        "ids": ["q1", "q2", "q3", "q4"],
        "truncated": [],
    }


def test_create_list_get_delete(client: TestClient) -> None:
    created = client.post("/collections", json={"name": "faq", "index": "flat"})
    assert created.json() == {
        "name": "faq",
        "status": "ready",
        "count": 0,
        "dimension": 32,
        "index": "flat",
        "transform": "none",
    }
    assert [c["name"] for c in client.get("/collections").json()["collections"]] == ["faq"]
    assert client.get("/collections/faq").json()["count"] == 0
    assert client.delete("/collections/faq").status_code == 204
    assert client.get("/collections/faq").status_code == 404


def test_documents(client: TestClient) -> None:
    _create(client)
    assert client.get("/collections/faq").json()["count"] == 4
    assert client.get("/collections/faq/documents/q3").json() == {
        k: DOCS[2][k] for k in ("id", "text", "metadata")
    }
    replaced = {"id": "q3", "text": "a girl sings a song", "metadata": {}}
    client.post("/collections/faq/documents", json={"documents": [replaced]})
    assert client.get("/collections/faq/documents/q3").json()["text"] == "a girl sings a song"
    assert client.get("/collections/faq").json()["count"] == 4
    generated = client.post("/collections/faq/documents", json={"documents": [{"text": "new"}]})
    assert len(generated.json()["ids"][0]) == 32
    assert client.delete("/collections/faq/documents/q1").status_code == 204
    assert client.get("/collections/faq/documents/q1").status_code == 404
    assert client.delete("/collections/faq/documents/q1").status_code == 404


def test_search_single_batch_and_filter(client: TestClient) -> None:
    _create(client)
    hits = client.post(
        "/collections/faq/search", json={"query": "the dog eats food", "top_k": 2}
    ).json()["hits"]
    assert hits[0]["id"] == "q2" and abs(hits[0]["score"] - 1.0) < 1e-5
    assert set(hits[0]) == {"id", "text", "score", "metadata"} and len(hits) == 2
    results = client.post(
        "/collections/faq/search",
        json={"queries": ["a man plays a guitar", "a woman slices tomatoes"], "top_k": 1},
    ).json()["results"]
    assert [r[0]["id"] for r in results] == ["q1", "q3"]
    filtered = client.post(
        "/collections/faq/search", json={"query": "a man plays a guitar", "filter": {"lang": "fr"}}
    ).json()["hits"]
    assert {h["id"] for h in filtered} == {"q3", "q4"}


def test_whitening_refit(client: TestClient) -> None:
    _create(client, whitening={"k": 3, "beta": 0, "gamma": 0})
    info = client.post("/collections/faq/whitening").json()
    assert info["dimension"] == 3 and info["transform"]["n_components"] == 3
    assert info["transform"]["beta"] == 0.0
    overridden = client.post("/collections/faq/whitening", json={"k": 2}).json()
    assert overridden["dimension"] == 2 and overridden["transform"]["beta"] == 0.0
    hits = client.post("/collections/faq/search", json={"query": "a woman slices tomatoes"}).json()
    assert hits["hits"][0]["id"] == "q3"
    # n_components is the field's name; k (above) its alias from earlier versions
    named = client.post("/collections/faq/whitening", json={"n_components": 4}).json()
    assert named["dimension"] == 4 and named["transform"]["n_components"] == 4
    too_many = client.post("/collections/faq/whitening", json={"n_components": 33})
    assert too_many.status_code == 422


def test_index_types(client: TestClient, backend: str) -> None:
    indexes = [("h", "hnsw"), ("f", "HNSW16")]
    if backend == "faiss":
        indexes.append(("ivf", "IVF2,Flat"))
    else:
        refused = client.post("/collections", json={"name": "ivf", "index": "IVF2,Flat"})
        assert refused.status_code == 422 and "not available on the Milvus" in refused.text
    for name, index in indexes:
        _create(client, name, index=index)
        hits = client.post(
            f"/collections/{name}/search", json={"query": "the dog eats food"}
        ).json()
        assert hits["hits"][0]["id"] == "q2", index


def test_restart_keeps_everything(settings: Settings) -> None:
    with TestClient(create_app(settings)) as first:
        _create(first)
        before = first.post("/collections/faq/search", json={"query": "a dog", "top_k": 4}).json()
    with TestClient(create_app(settings)) as second:
        assert second.get("/collections/faq").json()["count"] == 4
        after = second.post("/collections/faq/search", json={"query": "a dog", "top_k": 4}).json()
    assert after == before


def test_errors(client: TestClient) -> None:
    _create(client)
    cases = [
        ("post", "/collections", {"name": "Bad Name"}, 422),
        ("post", "/collections", {"name": "faq"}, 409),
        ("post", "/collections", {"name": "x", "index": "NotAnIndex"}, 422),
        ("post", "/collections", {"name": "x", "whitening": {"k": 0}}, 422),
        ("post", "/collections/nope/documents", {"documents": DOCS}, 404),
        ("post", "/collections/faq/documents", {"documents": []}, 400),
        ("post", "/collections/faq/documents", {"documents": [{"text": ""}]}, 400),
        ("post", "/collections/faq/documents", {"documents": [{"text": "a"}] * 21}, 413),
        ("post", "/collections/faq/documents", {"documents": [{"id": "a", "text": "x"}] * 2}, 422),
        ("post", "/collections/faq/documents", {"documents": [{"text": 5}]}, 422),
        ("post", "/collections/faq/search", {"query": "x", "queries": ["y"]}, 422),
        ("post", "/collections/faq/search", {}, 422),
        ("post", "/collections/faq/search", {"query": "x", "top_k": 11}, 413),
        ("post", "/collections/faq/search", {"query": "x", "top_k": 0}, 422),
        ("post", "/collections/faq/search", {"query": "x", "filter": {"a": [1]}}, 422),
        ("post", "/collections/faq/whitening", {"k": 33}, 422),
        ("get", "/collections/nope", None, 404),
        ("delete", "/collections/nope", None, 404),
    ]
    for method, path, body, status in cases:
        response = client.request(method, path, json=body)
        assert response.status_code == status, (path, body, response.json())
        assert set(response.json()) == {"error", "error_type"}


def test_whitening_of_an_empty_collection_is_400(client: TestClient) -> None:
    client.post("/collections", json={"name": "empty"})
    response = client.post("/collections/empty/whitening")
    assert response.status_code == 400 and "no documents" in response.json()["error"]


def test_rerank(client: TestClient, tiny_encoder) -> None:  # type: ignore[no-untyped-def]
    from app.similarity.ot import word_rotators_distance

    _create(client)
    body = {
        "query": "a man plays a guitar",
        "top_k": 3,
        "rerank": {"method": "wrd", "candidates": 4},
    }
    hits = client.post("/collections/faq/search", json=body).json()["hits"]
    assert len(hits) == 3 and hits[0]["id"] == "q1"
    query = tiny_encoder.encode_tokens(["a man plays a guitar"])[0]
    for hit in hits:
        text = next(d["text"] for d in DOCS if d["id"] == hit["id"])
        distance = word_rotators_distance(query, tiny_encoder.encode_tokens([text])[0]).distance
        assert hit["distance"] == pytest.approx(distance, abs=1e-3)  # float16 cache
        assert hit["score"] == pytest.approx(1 - hit["distance"])
        assert -1 <= hit["vector_score"] <= 1
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    again = client.post("/collections/faq/search", json=body).json()["hits"]  # cached tokens
    assert [h["id"] for h in again] == [h["id"] for h in hits]
    plain = client.post("/collections/faq/search", json={"query": "a man"}).json()["hits"]
    assert "vector_score" not in plain[0] and "distance" not in plain[0]


def test_reranked_search_runs_the_query_through_the_model_once(client: TestClient) -> None:
    """Its sentence vector (first stage) and token vectors (second) come from one pass."""
    _create(client)
    body = {"query": "a man plays a guitar", "top_k": 2, "rerank": {"candidates": 4}}
    assert client.post("/collections/faq/search", json=body).status_code == 200
    encoder = client.app.state.services.encoder  # type: ignore[attr-defined]
    passes: list[int] = []
    forward = encoder._forward

    def counting(batch, **kwargs):  # type: ignore[no-untyped-def]
        passes.append(len(batch.positions))
        return forward(batch, **kwargs)

    encoder._forward = counting
    try:  # the candidates' token vectors are cached now: only the query is encoded
        assert client.post("/collections/faq/search", json=body).status_code == 200
    finally:
        del encoder._forward
    assert passes == [1]


def test_rerank_errors(client: TestClient) -> None:
    _create(client)
    for rerank, status in (
        ({"method": "bm25"}, 422),
        ({"candidates": 201}, 413),
        ({"candidates": 0}, 422),
    ):
        response = client.post("/collections/faq/search", json={"query": "x", "rerank": rerank})
        assert response.status_code == status, rerank


def _fit_flow(settings: Settings, tiny_encoder, name: str = "flow") -> None:  # type: ignore[no-untyped-def]
    from app.transforms.flow import FlowTransform

    corpus = [f"the dog number {i} eats a {w}" for i in range(40) for w in ("cat", "car", "ball")]
    flow = FlowTransform(hidden=16, epochs=3, model=tiny_encoder.model_name, pooling="mean")
    flow.fit(tiny_encoder.encode(corpus)).save(settings.models_dir / name)


def test_collection_with_a_named_flow_transform(settings: Settings, tiny_encoder) -> None:  # type: ignore[no-untyped-def]
    _fit_flow(settings, tiny_encoder)
    with TestClient(create_app(settings)) as client:
        _create(client, transform="flow")
        info = client.get("/collections/faq").json()
        assert info["transform"]["type"] == "flow" and info["transform"]["name"] == "flow"
        hits = client.post("/collections/faq/search", json={"query": "the dog eats food"}).json()
        assert hits["hits"][0]["id"] == "q2"
        refit = client.post("/collections/faq/whitening")
        assert refit.status_code == 409 and "named transform" in refit.json()["error"]
        missing = client.post("/collections", json={"name": "x", "transform": "nope"})
        assert missing.status_code == 404
        both = client.post("/collections", json={"name": "y", "transform": "flow", "whitening": {}})
        assert both.status_code == 422
    with TestClient(create_app(settings)) as again:  # the transform is reloaded by name
        assert again.get("/collections/faq").json()["transform"]["type"] == "flow"
        hits = again.post("/collections/faq/search", json={"query": "the dog eats food"}).json()
        assert hits["hits"][0]["id"] == "q2"
