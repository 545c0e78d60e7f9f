"""POST /v1/embeddings (OpenAI) and POST /embed (TEI)."""

from __future__ import annotations

import base64

import numpy as np
from fastapi.testclient import TestClient

from app.encoding.bert import BertEncoder

SENTENCES = ["the dog eats", "a man plays a guitar in the park"]


def test_openai_shape_and_values(client: TestClient, tiny_encoder: BertEncoder) -> None:
    body = client.post("/v1/embeddings", json={"input": SENTENCES, "model": None}).json()
    assert body["object"] == "list" and body["model"].endswith("tiny-bert0")
    assert [d["index"] for d in body["data"]] == [0, 1]
    got = np.array([d["embedding"] for d in body["data"]])
    expected = tiny_encoder.encode(SENTENCES)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert body["usage"]["prompt_tokens"] == sum(
        len(ids) for ids in tiny_encoder.tokenizer(SENTENCES)["input_ids"]
    )


def test_openai_base64_and_dimensions(client: TestClient) -> None:
    floats = client.post("/v1/embeddings", json={"input": "the dog", "dimensions": 8}).json()
    b64 = client.post(
        "/v1/embeddings",
        json={"input": "the dog", "dimensions": 8, "encoding_format": "base64"},
    ).json()
    decoded = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats["data"][0]["embedding"], atol=1e-7)
    assert decoded.shape == (8,) and abs(np.linalg.norm(decoded) - 1) < 1e-5


def test_openai_other_model_is_404_in_openais_shape(client: TestClient) -> None:
    response = client.post("/v1/embeddings", json={"input": "x", "model": "text-embedding-3-small"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "model_not_found",
        "model",
    )
    assert "SENTSIM_SERVED_MODEL_NAMES" in error["message"]
    assert client.get(f"/v1/models/{'text-embedding-3-small'}").status_code == 404


def test_tei_embed_normalize_flag(client: TestClient, tiny_encoder: BertEncoder) -> None:
    raw = np.array(client.post("/embed", json={"inputs": SENTENCES, "normalize": False}).json())
    np.testing.assert_allclose(raw, tiny_encoder.encode(SENTENCES), atol=1e-5)
    unit = np.array(client.post("/embed", json={"inputs": "the dog"}).json())
    assert unit.shape == (1, 32) and abs(np.linalg.norm(unit) - 1) < 1e-5


def test_tei_truncate(client: TestClient) -> None:
    long_text = "!" * 150  # one token per "!": 152 tokens > 128 of the tiny model
    refused = client.post("/embed", json={"inputs": long_text})
    assert refused.status_code == 413 and "truncate" in refused.json()["error"]
    assert client.post("/embed", json={"inputs": long_text, "truncate": True}).status_code == 200


def test_bad_inputs(client: TestClient) -> None:
    cases = [
        ({"input": []}, 400, "empty_input"),
        ({"input": ["ok", "  "]}, 400, "empty_input"),
        ({"input": 3}, 422, "validation_error"),
        ({"input": ["x"] * 9}, 413, "batch_too_large"),  # limit 8 in the test settings
        ({"input": "x" * 201}, 413, "batch_too_large"),  # 200 characters
        ({"input": "x", "dimensions": 33}, 422, "dimension_mismatch"),
        ({"input": "x", "encoding_format": "int8"}, 422, "validation_error"),
    ]
    for body, status, kind in cases:
        response = client.post("/v1/embeddings", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, kind), body
