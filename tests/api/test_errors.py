"""The error table, uniform bodies, auth, body-size limit, non-JSON bodies."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.errors import ERROR_STATUS, register_exception_handlers
from app.core import errors
from app.core.config import Settings
from app.main import create_app


def _raising_app(exc: Exception) -> FastAPI:
    app = FastAPI()
    register_exception_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return app


@pytest.mark.parametrize(
    ("error", "status"), sorted(ERROR_STATUS.items(), key=lambda e: e[0].__name__)
)
def test_each_domain_error_maps_to_its_status(
    error: type[errors.ServiceError], status: int
) -> None:
    response = TestClient(_raising_app(error("what went wrong"))).get("/boom")
    assert response.status_code == status
    assert response.json() == {"error": "what went wrong", "error_type": error.error_type}


def test_subclasses_inherit_their_parents_status() -> None:
    class Custom(errors.NotFoundError):
        error_type = "custom"

    assert TestClient(_raising_app(Custom("x"))).get("/boom").status_code == 404


def test_unexpected_errors_are_a_generic_500() -> None:
    client = TestClient(_raising_app(RuntimeError("secret detail")), raise_server_exceptions=False)
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error", "error_type": "internal_error"}


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/nope").json()["error_type"] == "not_found"
    assert client.get("/embed").status_code == 405


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/embed", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.json() == {
        "error": "the request body is not valid JSON: send UTF-8 encoded JSON with "
        "Content-Type: application/json",
        "error_type": "invalid_json",
    }
    assert response.status_code == 422


def test_nan_in_metadata_is_refused(client: TestClient) -> None:
    client.post("/collections", json={"name": "c"})
    body = b'{"documents": [{"text": "x", "metadata": {"score": NaN}}]}'
    response = client.post(
        "/collections/c/documents", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and "finite" in response.json()["error"]


def test_oversize_body_is_413(client: TestClient) -> None:
    response = client.post("/embed", json={"inputs": ["x" * 1000] * 100})  # ~100 KB > 64 KiB
    assert response.status_code == 413 and response.json()["error_type"] == "payload_too_large"

    def chunks():  # no Content-Length: a chunked upload
        for _ in range(100):
            yield b"x" * 1000

    chunked = client.post("/embed", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413


def test_api_key(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_key": SecretStr("s3cret")})
    with TestClient(create_app(keyed)) as client:
        assert client.get("/health").status_code == 200  # open
        for path in ("/info", "/metrics", "/collections"):
            response = client.get(path)
            assert response.status_code == 401 and response.json()["error_type"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        assert client.get("/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.post("/embed", json={"inputs": "x"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_no_api_key_means_open(client: TestClient) -> None:
    assert client.get("/info").status_code == 200


def test_a_body_that_is_not_utf8_or_nests_too_deep_is_422(client: TestClient) -> None:
    """Found by schemathesis: FastAPI answered these with an undocumented 400."""
    headers = {"content-type": "application/json"}
    too_deep = b'{"input": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    for body in (b"\xa3C[4\xf4", too_deep):
        response = client.post("/embed", content=body, headers=headers)
        assert response.status_code == 422
        assert response.json()["error_type"] == "invalid_json"


def test_metrics_content_type_is_documented(client: TestClient) -> None:
    """Found by schemathesis: /metrics answered text/plain where the schema said JSON."""
    documented = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]
    assert list(documented["200"]["content"]) == ["text/plain"]
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
