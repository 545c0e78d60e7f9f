"""GET /health, /info, /metrics, /docs."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


def test_health_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model": "loaded", "store": "open", "reasons": []}


def test_health_is_503_before_start_up(settings: Settings) -> None:
    response = TestClient(create_app(settings)).get("/health")  # lifespan not run
    assert response.status_code == 503
    assert response.json()["error_type"] == "unhealthy"


def test_info(client: TestClient, settings: Settings) -> None:
    info = client.get("/info").json()
    assert info["dimension"] == 32 and info["pooling"] == "mean" and info["precision"] == "fp32"
    assert info["limits"]["max_top_k"] == settings.max_top_k == 10
    assert info["model"].endswith("tiny-bert0")
    assert info["precision_reason"] == "asked for"


def test_info_and_log_say_what_precision_auto_chose_and_why(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    auto = settings.model_copy(update={"precision": "auto"})
    with caplog.at_level(logging.INFO), TestClient(create_app(auto)) as client:
        info = client.get("/info").json()
    assert info["precision"] in ("fp32", "bf16")
    assert info["precision_reason"] not in ("", "asked for")
    ready = [r.getMessage() for r in caplog.records if "sentsim ready" in r.getMessage()]
    assert ready and f"precision {info['precision']} ({info['precision_reason']})" in ready[0]


def test_metrics_expose_latency_batches_and_queue(client: TestClient) -> None:
    client.post("/embed", json={"inputs": ["the dog"]})
    text = client.get("/metrics").text
    assert (
        'sentsim_request_duration_seconds_count{method="POST",route="/embed",status="200"}' in text
    )
    assert "sentsim_batch_size_sentences_count" in text
    assert "sentsim_queue_depth_requests" in text


def test_openapi_and_docs(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/embeddings", "/embed", "/similarity", "/collections/{name}/search"):
        assert path in paths
    assert client.get("/docs").status_code == 200
