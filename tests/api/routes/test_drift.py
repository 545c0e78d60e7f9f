"""POST /collections/{name}/compare and GET /collections/{name}/drift (Gaussian distances)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.encoding.bert import BertEncoder
from app.similarity.gaussian import Gaussian, gaussian_distances
from tests.api.conftest import BACKENDS

DOCS = [
    "a man plays a guitar",
    "the dog eats food",
    "a woman slices tomatoes",
    "children running on the beach",
    "a cat sleeps on the sofa",
    "the horse rides in the park",
]
OTHER = ["stocks fell sharply", "the bank raised rates", "a song on the radio", "food prices"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both vector backends."""
    return str(request.param)


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


def _upsert(client: TestClient, name: str, texts: list[str]) -> None:
    for start in range(0, len(texts), 20):
        docs = [{"text": t} for t in texts[start : start + 20]]
        response = client.post(f"/collections/{name}/documents", json={"documents": docs})
        assert response.status_code == 200, response.json()


def _w2_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """W2 between Gaussians fitted to two sets (numpy mean/cov, scipy sqrtm): the reference."""
    from scipy.linalg import sqrtm

    ma, mb = a.mean(0), b.mean(0)
    ca, cb = np.cov(a.T, ddof=1), np.cov(b.T, ddof=0)  # the whitening's Σ is the biased one
    root = sqrtm(cb)
    cross = np.real(sqrtm(root @ ca @ root))
    return float(np.sqrt(max(np.sum((ma - mb) ** 2) + np.trace(ca + cb - 2 * cross), 0.0)))


def test_collection_info_says_when_documents_left_the_whitening_fit(
    settings: Settings, tiny_encoder: BertEncoder
) -> None:
    from app.main import create_app

    fresh = settings.model_copy(update={"whitening_drift_refresh_s": 0.0})  # every change
    with TestClient(create_app(fresh)) as client:
        _check_whitening_drift(client, settings, tiny_encoder)


def _check_whitening_drift(
    client: TestClient, settings: Settings, tiny_encoder: BertEncoder
) -> None:
    fitted = [
        f"{w} {v} the {o}"
        for w in ("a man", "a woman", "the dog", "a child")
        for v in ("plays", "eats", "rides", "sits")
        for o in ("guitar", "food", "horse")
    ]  # 48 > d = 32
    assert client.post("/collections", json={"name": "faq", "whitening": {}}).status_code == 201
    _upsert(client, "faq", fitted)
    plain = client.get("/collections/faq").json()
    assert "whitening_drift" not in plain  # no whitening yet
    assert client.post("/collections/faq/whitening", json={}).status_code == 200
    info = client.get("/collections/faq").json()["whitening_drift"]
    assert info["n"] == info["reference_n"] == len(fitted)
    assert info["relative"] < 0.05  # the documents are the fitting corpus
    assert info["drifted"] is False and info["threshold"] == settings.whitening_drift_threshold

    moved = [f"stocks {v} sharply on day {i}" for v in ("fell", "rose", "slid") for i in range(20)]
    _upsert(client, "faq", moved)
    info = client.get("/collections/faq").json()["whitening_drift"]
    raw = tiny_encoder.encode(fitted + moved)
    assert info["w2"] == pytest.approx(_w2_scipy(raw, raw[: len(fitted)]), rel=1e-3)
    assert info["n"] == len(fitted) + len(moved) and info["reference_n"] == len(fitted)
    assert info["drifted"] is (info["relative"] > info["threshold"])
    assert info["relative"] > 0.2


def test_whitening_drift_reading_is_reused_while_the_collection_keeps_changing(
    settings: Settings,
) -> None:
    from app.main import create_app

    cached = settings.model_copy(update={"whitening_drift_refresh_s": 3600.0})
    with TestClient(create_app(cached)) as client:
        client.post("/collections", json={"name": "faq", "whitening": {}})
        _upsert(client, "faq", DOCS * 2)
        client.post("/collections/faq/whitening", json={})
        first = client.get("/collections/faq").json()["whitening_drift"]
        _upsert(client, "faq", OTHER)
        again = client.get("/collections/faq").json()["whitening_drift"]
        assert again == first  # within the refresh interval: no new scan of every vector
        client.post("/collections/faq/whitening", json={})  # a refit is a new whitening
        refit = client.get("/collections/faq").json()["whitening_drift"]
        assert refit["n"] == len(DOCS) * 2 + len(OTHER)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/collections/faq", None),  # whitening_drift streams the stored vectors
        ("POST", "/collections/faq/compare", {"against": "faq"}),
        ("POST", "/collections/faq/clusters", {"method": "threshold"}),
        ("POST", "/collections/faq/duplicates", {}),
    ],
)
def test_a_delete_racing_a_read_of_the_store_is_never_a_500(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    method: str,
    path: str,
    body: object,
) -> None:
    import threading

    client.post("/collections", json={"name": "faq", "whitening": {}})
    _upsert(client, "faq", DOCS * 2)
    assert client.post("/collections/faq/whitening", json={}).status_code == 200
    services = client.app.state.services  # type: ignore[attr-defined]
    services.drift.whitening_refresh_s = 0.0
    _upsert(client, "faq", OTHER)  # the whitening-drift reading is taken anew
    collection = services.collections.get("faq")
    raced = threading.Event()

    def racing(read):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            if not raced.is_set():  # a DELETE from another thread as the store is read
                raced.set()
                deleting = threading.Thread(target=collection.close)
                deleting.start()
                deleting.join(0.5)  # it waits for the collection's lock, if the read holds it
            result = read(*args, **kwargs)
            return list(result) if not isinstance(result, dict) else result

        return wrapper

    if backend == "faiss":  # the store's reads
        store = collection.store
        monkeypatch.setattr(store, "iter_vectors", racing(store.iter_vectors))
        monkeypatch.setattr(store, "ids_by_seqs", racing(store.ids_by_seqs))
    else:  # Milvus's reads of every row, and of ids
        from app.index import milvus_collection

        rows = racing(milvus_collection.iter_rows)
        monkeypatch.setattr(milvus_collection, "iter_rows", rows)
        monkeypatch.setattr(collection, "ids_of", racing(collection.ids_of))
    response = client.request(method, path, json=body)
    assert raced.is_set()
    assert response.status_code in (200, 404), response.text
