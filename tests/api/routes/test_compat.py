"""What OpenAI and TEI clients rely on (issue 10): error shapes, /v1/models, served names,
token-id input, TEI's POST /, one truncation policy, and docs that need no CDN."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app

#: Over the tiny BERT's 128 tokens (each punctuation mark is one) but under the test
#: settings' 200 characters.
LONG = ".," * 80


def _openai_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    return error


def test_v1_models_lists_the_served_names(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    (card,) = body["data"]
    assert card["object"] == "model" and card["id"] == "tiny-bert0"  # the folder, not its path
    assert client.get("/v1/models/tiny-bert0").json()["id"] == "tiny-bert0"


def test_served_model_names_are_configurable(settings: Settings) -> None:
    names = ["all-MiniLM-L6-v2", "text-embedding-ada-002"]
    with TestClient(create_app(settings.model_copy(update={"served_model_names": names}))) as c:
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == names
        for name in names:
            body = c.post("/v1/embeddings", json={"input": "the dog", "model": name}).json()
            assert body["model"] == name
        assert c.post("/v1/embeddings", json={"input": "the dog"}).json()["model"] == names[0]
        error = _openai_error(
            c.post("/v1/embeddings", json={"input": "x", "model": "other"}), 404, "model_not_found"
        )
        assert "all-MiniLM-L6-v2, text-embedding-ada-002" in error["message"]
    update = {"served_model_names": ["mine", "*"]}
    with TestClient(create_app(settings.model_copy(update=update))) as c:
        assert c.post("/v1/embeddings", json={"input": "x", "model": "any"}).status_code == 200
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["mine"]


def test_served_model_names_setting_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTSIM_SERVED_MODEL_NAMES", "a, b,c")
    assert Settings().served_model_names == ["a", "b", "c"]


@pytest.mark.parametrize("tokens", [[1, 2, 3], [[1, 2], [3]]])
def test_token_ids_get_a_422_that_says_how_to_send_text(client: TestClient, tokens: Any) -> None:
    error = _openai_error(
        client.post("/v1/embeddings", json={"input": tokens}), 422, "validation_error"
    )
    assert error["param"] == "input" and "check_embedding_ctx_length=False" in error["message"]


def test_v1_errors_are_in_openais_shape_everywhere(settings: Settings) -> None:
    update = {"api_key": SecretStr("secret"), "max_request_bytes": 1024}
    with TestClient(create_app(settings.model_copy(update=update))) as c:
        error = _openai_error(c.post("/v1/embeddings", json={"input": "x"}), 401, "unauthorized")
        assert error["type"] == "authentication_error"
        auth = {"Authorization": "Bearer secret"}
        big = {"input": ["the dog"] * 200}  # over 1 KiB: refused by the body-size middleware
        _openai_error(c.post("/v1/embeddings", json=big, headers=auth), 413, "payload_too_large")
        error = _openai_error(
            c.post("/v1/embeddings", json={"input": "x", "dimensions": 0}, headers=auth),
            422,
            "validation_error",
        )
        assert error["param"] == "dimensions"
        # Outside /v1/ the body stays TEI's.
        assert set(c.post("/embed", json={"inputs": "x"}).json()) == {"error", "error_type"}


def test_tei_root_route_is_embed(client: TestClient) -> None:
    body = {"inputs": ["the dog eats", "a man"], "normalize": True}
    root = client.post("/", json=body)
    assert root.status_code == 200
    np.testing.assert_allclose(root.json(), client.post("/embed", json=body).json(), atol=1e-6)
    # huggingface_hub's InferenceClient sends TEI's other fields too.
    extra = {"inputs": "x", "truncate": False, "truncation_direction": "right"}
    assert client.post("/", json=extra).status_code == 200


# --- one truncation policy -----------------------------------------------------------------


def test_over_length_input_is_refused_unless_truncate_on_every_route(client: TestClient) -> None:
    client.post("/collections", json={"name": "c"})
    client.post("/collections/c/documents", json={"documents": [{"id": "a", "text": "dog"}]})
    routes: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/embeddings", {"input": ["the dog", LONG]}, "input"),
        ("/embed", {"inputs": ["the dog", LONG]}, "inputs"),
        ("/", {"inputs": LONG}, "inputs"),
        ("/similarity", {"inputs": {"source_sentence": "x", "sentences": [LONG]}}, "sentences"),
        ("/collections/c/documents", {"documents": [{"id": "b", "text": LONG}]}, "documents"),
        ("/collections/c/search", {"query": LONG}, "query"),
    ]
    for path, body, field in routes:
        refused = client.post(path, json=body)
        assert refused.status_code == 413, (path, refused.text)
        text = str(refused.json())
        assert "truncate=true" in text and f"{field}[" in text or field == "query", path
    assert client.get("/collections/c/documents/b").status_code == 404  # nothing stored


def test_truncation_is_reported_never_silent(client: TestClient) -> None:
    response = client.post("/v1/embeddings", json={"input": ["the dog", LONG], "truncate": True})
    assert response.status_code == 200 and response.headers["X-Truncated-Inputs"] == "input[1]"
    assert response.json()["usage"]["prompt_tokens"] <= 4 + 128
    response = client.post("/embed", json={"inputs": "the dog"})
    assert "X-Truncated-Inputs" not in response.headers
    params = {"truncate": True}
    response = client.post(
        "/similarity",
        json={"inputs": {"source_sentence": LONG, "sentences": ["a", LONG]}, "parameters": params},
    )
    assert response.headers["X-Truncated-Inputs"] == "source_sentence,sentences[1]"
    client.post("/collections", json={"name": "c"})
    docs = [{"id": "short", "text": "the dog"}, {"id": "long", "text": LONG}]
    stored = client.post("/collections/c/documents", json={"documents": docs, "truncate": True})
    assert stored.json() == {"ids": ["short", "long"], "truncated": ["long"]}
    assert client.get("/collections/c/documents/long").json()["text"] == LONG  # kept whole
    found = client.post("/collections/c/search", json={"query": LONG, "truncate": True})
    assert found.headers["X-Truncated-Inputs"] == "query"
    assert found.json()["hits"][0]["id"] == "long"


# --- docs and schema -----------------------------------------------------------------------


def test_docs_reference_no_other_host(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
        urls += re.findall(r"""url:\s*["']([^"']+)""", html)
        assert urls, page
        for url in urls:
            assert url.startswith("/"), (page, url)  # served here, no CDN
            if url.endswith((".js", ".css")):
                assert client.get(url).status_code == 200, url


def test_openapi_lists_the_real_error_bodies_and_the_bearer_scheme(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]
    assert "HTTPValidationError" not in components["schemas"]  # FastAPI's, never sent
    assert components["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = operation["responses"]
            if path != "/health":
                assert {"HTTPBearer": []} in operation.get("security", []), (method, path)
                assert "401" in statuses, (method, path)
            if operation.get("requestBody") or operation.get("parameters"):
                assert "422" in statuses, (method, path)
            if method == "post" and operation.get("requestBody"):
                assert "413" in statuses, (method, path)  # the body-size limit
            for status, answer in statuses.items():
                if status.startswith(("4", "5")):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    expected = "OpenAIErrorResponse" if path.startswith("/v1/") else "ErrorResponse"
                    assert ref.endswith("/" + expected), (method, path, status)
