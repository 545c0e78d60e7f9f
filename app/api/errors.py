"""The one place that maps errors to HTTP: ``ERROR_STATUS``, the bodies, the exception handlers.

Every error body is ``{"error": str, "error_type": str}`` (TEI's ``ErrorResponse``), except
under ``/v1/``, the OpenAI-compatible routes, where it is OpenAI's
``{"error": {"message", "type", "param", "code"}}`` (``code`` is the same ``error_type``), so
OpenAI SDKs show the message. Routes contain no try/except: domain errors propagate here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import (
    ArtifactNotFoundError,
    BatchTooLargeError,
    ConflictError,
    DimensionMismatchError,
    EmptyInputError,
    InputValidationError,
    ModelLoadError,
    NotFittedError,
    NotFoundError,
    NotReadyError,
    OverloadedError,
    ReadOnlyError,
    ServiceError,
    StorageError,
    TransformMismatchError,
    UnauthorizedError,
)

logger = logging.getLogger(__name__)

#: Domain error -> HTTP status. Looked up along the exception's MRO, most specific first.
ERROR_STATUS: dict[type[ServiceError], int] = {
    EmptyInputError: 400,
    UnauthorizedError: 401,
    NotFoundError: 404,
    ArtifactNotFoundError: 404,
    ConflictError: 409,
    NotFittedError: 409,
    BatchTooLargeError: 413,
    InputValidationError: 422,
    DimensionMismatchError: 422,
    TransformMismatchError: 422,
    OverloadedError: 429,
    NotReadyError: 503,
    ModelLoadError: 503,
    ReadOnlyError: 503,
    StorageError: 507,
}


#: FastAPI's message for a request body it could not decode at all.
FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"

#: The answer to a body that is not JSON at all.
INVALID_JSON = (
    "the request body is not valid JSON: send UTF-8 encoded JSON with "
    "Content-Type: application/json"
)


class ErrorResponse(BaseModel):
    """The body of an error response (every route outside ``/v1/``)."""

    error: str = Field(description="What was wrong and how to fix it.")
    error_type: str = Field(description="A stable name of the error, e.g. validation_error.")


class OpenAIError(BaseModel):
    """OpenAI's error object."""

    message: str = Field(description="What was wrong and how to fix it.")
    type: str = Field(description="invalid_request_error, authentication_error, ...")
    param: str | None = Field(description="The request field at fault, when one is.")
    code: str = Field(description="A stable name of the error (sentsim's error_type).")


class OpenAIErrorResponse(BaseModel):
    """The body of an error response under ``/v1/`` (OpenAI's shape)."""

    error: OpenAIError


#: HTTP status -> OpenAI error ``type``; others are invalid_request_error (4xx) or server_error.
OPENAI_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def is_openai_path(path: str) -> bool:
    """Whether ``path`` is under ``/v1/`` (answered in OpenAI's error shape)."""
    return path == "/v1" or path.startswith("/v1/")


def error_body(
    path: str, status: int, message: str, error_type: str, param: str | None = None
) -> dict[str, Any]:
    """The error body for a request to ``path``: OpenAI's shape under ``/v1/``, else TEI's."""
    if is_openai_path(path):
        kind = OPENAI_ERROR_TYPES.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        return {"error": {"message": message, "type": kind, "param": param, "code": error_type}}
    return {"error": message, "error_type": error_type}


def status_of(exc: ServiceError) -> int:
    """The HTTP status of a domain error (500 for one the table does not name)."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def error_response(
    request: Request, status: int, message: str, error_type: str, param: str | None = None
) -> JSONResponse:
    """A JSON error response in the shape for the request's path (``error_body``)."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = error_body(request.url.path, status, message, error_type, param)
    return JSONResponse(body, status, headers=headers)


#: What each error status means, for the OpenAPI document.
STATUS_DESCRIPTIONS = {
    400: "Empty input, or a Host header this server does not answer for",
    401: "Missing or wrong API key (with SENTSIM_API_KEY set)",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Over a size limit (the message names the SENTSIM_* setting)",
    422: "Invalid request: the message names the field and the fix",
    429: "The model queue is full: retry later",
    500: "Unexpected error (logged; reported without details)",
    503: "Not ready (starting, read-only, or a model not loaded)",
    507: "The disk is full or failing; nothing was written",
}


def responses(*statuses: int, openai: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for a route's error statuses, with the real body."""
    model = OpenAIErrorResponse if openai else ErrorResponse
    return {s: {"model": model, "description": STATUS_DESCRIPTIONS[s]} for s in statuses}


#: Response header naming the inputs cut to the model's limit (requests with ``truncate``).
TRUNCATED_HEADER = "X-Truncated-Inputs"


def report_truncation(response: Response, fields: Sequence[str]) -> None:
    """Name the truncated inputs (``input[3]``, ``sentences[0]``) in ``X-Truncated-Inputs``."""
    if fields:
        response.headers[TRUNCATED_HEADER] = ",".join(fields)


#: The OpenAPI security scheme of ``SENTSIM_API_KEY``.
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "With SENTSIM_API_KEY set: Authorization: Bearer <key> (OpenAI clients: "
    "api_key).",
}


def document_errors(app: FastAPI, public: Sequence[str] = ("/health",)) -> None:
    """Make ``app``'s OpenAPI document list, on every operation, the errors any route can
    answer, each with the real body: 400 (a Host not allowed) and 503 (not ready); 401 unless
    the path is ``public``; 413 and 422 with a request body, 422 with parameters. FastAPI's
    own 422 shape (``HTTPValidationError``), never sent, is replaced and dropped. Operations
    but the public ones carry the ``HTTPBearer`` security scheme (Swagger UI's Authorize
    button; ``deps.require_api_key`` checks it — declared here rather than as a ``Security``
    dependency, which would parse the header on every request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            model = "OpenAIErrorResponse" if is_openai_path(path) else "ErrorResponse"
            for operation in operations.values():
                statuses = [400, 503] + ([] if path in public else [401])
                if path not in public:
                    operation["security"] = [{"HTTPBearer": []}]
                if "requestBody" in operation:
                    statuses += [413, 422]
                if operation.get("parameters"):
                    statuses.append(422)
                answers = operation.setdefault("responses", {})
                for status in statuses:
                    answer = answers.get(str(status))
                    if answer is None or "HTTPValidationError" in str(answer):
                        answers[str(status)] = {
                            "description": STATUS_DESCRIPTIONS[status],
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": f"#/components/schemas/{model}"}
                                }
                            },
                        }
        components = schema.setdefault("components", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(name, None)
        components.setdefault("securitySchemes", {})["HTTPBearer"] = BEARER_SCHEME
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def _where(err: Any) -> str:
    return ".".join(str(p) for p in err.get("loc", ()) if p != "body")


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = _where(err)
        message = str(err.get("msg", "invalid"))
        # Checks of the whole body (a lone surrogate anywhere) name the field themselves.
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def redactor(folders: Sequence[tuple[Path, str]]) -> Callable[[str], str]:
    """A function that replaces each folder's absolute path in a message with its label.

    A safety net: messages meant for clients name files relative to the settings already, but
    no error body may show where the server keeps its files.
    """
    pairs: list[tuple[str, str]] = []
    for folder, label in folders:
        for form in {str(folder.resolve()), str(folder.absolute())}:
            if len(form) > 1:
                pairs.append((form, label))
    pairs.sort(key=lambda pair: -len(pair[0]))  # the longest (innermost) folder first

    def redact(message: str) -> str:
        for path, label in pairs:
            message = message.replace(path, label)
        return message

    return redact


def register_exception_handlers(
    app: FastAPI, redact: Callable[[str], str] = lambda message: message
) -> None:
    """Install the handlers: domain errors, request validation, HTTP errors, the rest.

    Args:
        app: The app.
        redact: Applied to domain errors' messages (``redactor``).
    """

    async def service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        param = getattr(exc, "param", None)
        return error_response(request, status_of(exc), redact(str(exc)), exc.error_type, param)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            return error_response(request, 422, INVALID_JSON, "invalid_json")
        param = _where(errors[0]) if errors else None
        return error_response(request, 422, _describe(exc), "validation_error", param or None)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
            # FastAPI answers 422 to malformed JSON but 400 to a body it cannot even decode
            # (not UTF-8, nested past Python's recursion limit): one answer for both.
            return error_response(request, 422, INVALID_JSON, "invalid_json")
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, str(exc.detail), kind)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, "internal server error", "internal_error")

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
