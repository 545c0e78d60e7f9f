"""POST /similarity, with and without a named transform."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.encoding.bert import BertEncoder
from app.transforms.whitening import Whitening

BODY = {"inputs": {"source_sentence": "the dog eats", "sentences": ["a dog", "a red car"]}}


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (b @ a) / np.linalg.norm(b, axis=1) / np.linalg.norm(a)


def test_cosine_scores(client: TestClient, tiny_encoder: BertEncoder) -> None:
    scores = client.post("/similarity", json=BODY).json()
    vectors = tiny_encoder.encode(["the dog eats", "a dog", "a red car"])
    np.testing.assert_allclose(scores, _cos(vectors[0], vectors[1:]), atol=1e-5)


def test_named_transform(client: TestClient, settings: Settings, tiny_encoder: BertEncoder) -> None:
    corpus = tiny_encoder.encode(
        [f"the dog number {i} eats a {w}" for i in range(30) for w in ("cat", "car")]
    )
    whitening = Whitening(8, model=tiny_encoder.model_name, pooling="mean").fit(corpus)
    whitening.save(settings.models_dir / "w8")
    body = {**BODY, "parameters": {"method": "cosine", "transform": "w8"}}
    scores = client.post("/similarity", json=body).json()
    t = whitening.transform(tiny_encoder.encode(["the dog eats", "a dog", "a red car"]))
    np.testing.assert_allclose(scores, _cos(t[0], t[1:]), atol=1e-4)


def test_transform_for_another_encoder_is_refused(
    client: TestClient, settings: Settings, tiny_encoder: BertEncoder
) -> None:
    corpus = tiny_encoder.encode(["a", "b", "c", "the dog", "a man plays"])
    Whitening(2, model="another-model", pooling="mean").fit(corpus).save(settings.models_dir / "x")
    response = client.post("/similarity", json={**BODY, "parameters": {"transform": "x"}})
    assert response.status_code == 422 and response.json()["error_type"] == "transform_mismatch"
    assert "another-model" in response.json()["error"]


def test_errors(client: TestClient) -> None:
    cases = [
        ({**BODY, "parameters": {"method": "euclid"}}, 422, "unknown method"),
        ({**BODY, "parameters": {"transform": "missing"}}, 404, "no transform"),
        ({**BODY, "parameters": {"transform": "../etc"}}, 422, "folder name"),
        ({"inputs": {"source_sentence": "x", "sentences": []}}, 422, "sentences"),
        ({"inputs": {"source_sentence": "", "sentences": ["x"]}}, 400, "empty"),
        ({"inputs": {"source_sentence": "x"}}, 422, "sentences"),
    ]
    for body, status, message in cases:
        response = client.post("/similarity", json=body)
        assert response.status_code == status, body
        assert message in response.json()["error"], response.json()


def test_transport_methods_and_alignment(client: TestClient, tiny_encoder: BertEncoder) -> None:
    from app.similarity.ot import word_movers_distance, word_rotators_distance

    tokens = tiny_encoder.encode_tokens(["the dog eats", "a dog", "a red car"])
    wrd = client.post("/similarity", json={**BODY, "parameters": {"method": "wrd"}}).json()
    expected = [1 - word_rotators_distance(tokens[0], t).distance for t in tokens[1:]]
    np.testing.assert_allclose(wrd, expected, atol=1e-5)
    wmd = client.post("/similarity", json={**BODY, "parameters": {"method": "wmd"}}).json()
    expected = [1 / (1 + word_movers_distance(tokens[0], t).distance) for t in tokens[1:]]
    np.testing.assert_allclose(wmd, expected, atol=1e-5)
    aligned = client.post(
        "/similarity", json={**BODY, "parameters": {"method": "wrd", "alignment": True}}
    ).json()
    np.testing.assert_allclose(aligned["scores"], wrd, atol=1e-9)
    assert len(aligned["alignments"]) == 2
    first = aligned["alignments"][0]
    assert {"source", "target", "source_index", "target_index", "mass"} == set(first[0])
    assert aligned["tokens"] == tiny_encoder.tokenize(["the dog eats", "a dog", "a red car"])
    for sentence, pairs in enumerate(aligned["alignments"], start=1):
        for pair in pairs:  # the indices point at the tokens named
            assert aligned["tokens"][0][pair["source_index"]] == pair["source"]
            assert aligned["tokens"][sentence][pair["target_index"]] == pair["target"]
    assert {p["source"] for p in first} <= {"the", "dog", "eats"}
    assert {p["target"] for p in first} <= {"a", "dog"}


def test_transport_errors(client: TestClient) -> None:
    for parameters, message in (
        ({"method": "cosine", "alignment": True}, "alignment"),
        ({"method": "wrd", "transform": "x"}, "cosine"),
    ):
        response = client.post("/similarity", json={**BODY, "parameters": parameters})
        assert response.status_code == 422 and message in response.json()["error"]


def test_named_flow_transform(
    client: TestClient, settings: Settings, tiny_encoder: BertEncoder
) -> None:
    from app.transforms.flow import FlowTransform

    corpus = [f"the dog number {i} eats a {w}" for i in range(40) for w in ("cat", "car", "ball")]
    flow = FlowTransform(hidden=16, epochs=3, model=tiny_encoder.model_name, pooling="mean")
    flow.fit(tiny_encoder.encode(corpus)).save(settings.models_dir / "f")
    scores = client.post("/similarity", json={**BODY, "parameters": {"transform": "f"}}).json()
    z = flow.transform(tiny_encoder.encode(["the dog eats", "a dog", "a red car"]))
    np.testing.assert_allclose(scores, _cos(z[0], z[1:]), atol=1e-4)


def test_explain(client: TestClient, tiny_encoder: BertEncoder) -> None:
    body = {"source_sentence": "the man plays a guitar", "sentence": "a boy playing", "steps": 20}
    response = client.post("/similarity/explain", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    vectors = tiny_encoder.encode([body["source_sentence"], body["sentence"]])
    assert got["score"] == pytest.approx(float(_cos(vectors[0], vectors[1:])[0]), abs=1e-5)
    assert [t["token"] for t in got["source"]] == ["the", "man", "plays", "a", "guitar"]
    assert [t["token"] for t in got["target"]] == ["a", "boy", "playing"]
    total = sum(t["attribution"] for t in got["source"] + got["target"])
    gap = got["score"] - got["baseline_score"]
    assert abs(total - gap) == pytest.approx(got["completeness_error"], abs=1e-6)
    assert got["completeness_error"] <= 0.01 * abs(gap)
    assert "[PAD]" in got["baseline"]
    merged = client.post(
        "/similarity/explain", json={**body, "sentence": "two girls", "merge_words": True}
    )
    assert [t["token"] for t in merged.json()["target"]] == ["two", "girls"]


def test_explain_errors_and_truncation(client: TestClient) -> None:
    long = "." * 150  # 152 tokens in 150 characters; the tiny model takes 128
    cases = [
        ({"source_sentence": "a", "sentence": "b", "steps": 0}, 422, "steps"),
        ({"source_sentence": "a", "sentence": "b", "steps": 100_000}, 422, "steps"),
        ({"source_sentence": " ", "sentence": "b"}, 400, "empty"),
        ({"source_sentence": "a"}, 422, "sentence"),
        ({"source_sentence": "a", "sentence": long}, 413, "truncate"),
    ]
    for body, status, message in cases:
        response = client.post("/similarity/explain", json=body)
        assert response.status_code == status, body
        assert message in response.text, response.json()
    cut = client.post(
        "/similarity/explain",
        json={"source_sentence": "a dog", "sentence": long, "truncate": True, "steps": 2},
    )
    assert cut.status_code == 200 and cut.headers["X-Truncated-Inputs"] == "sentence"
    assert len(cut.json()["target"]) == 126


def test_explain_refuses_int8(settings: Settings) -> None:
    from app.main import create_app

    with TestClient(create_app(settings.model_copy(update={"precision": "int8"}))) as int8:
        response = int8.post("/similarity/explain", json={"source_sentence": "a", "sentence": "b"})
    assert response.status_code == 409 and "int8" in response.json()["error"]
