"""The one place that maps errors to HTTP: ``ERROR_STATUS`` and the exception handlers.

Every error body is ``{"error": str, "error_type": str}`` (TEI's ``ErrorResponse``). Routes
contain no try/except: domain errors propagate here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
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


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: str
    error_type: str


def status_of(exc: ServiceError) -> int:
    """The HTTP status of a domain error (500 for one the table does not name)."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def error_response(status: int, message: str, error_type: str) -> JSONResponse:
    """A JSON error response in the uniform shape."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, "error_type": error_type}, status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for a route's error statuses."""
    return {s: {"model": ErrorResponse, "description": "Error"} for s in statuses}


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
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

    async def service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return error_response(status_of(exc), redact(str(exc)), exc.error_type)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, _describe(exc), "validation_error")

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
            # FastAPI answers 422 to malformed JSON but 400 to a body it cannot even decode
            # (not UTF-8, nested past Python's recursion limit): one answer for both.
            return error_response(
                422, "the request body is not valid JSON: send UTF-8 encoded JSON", "invalid_json"
            )
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), kind)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal server error", "internal_error")

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
