"""ASGI middleware: allowed hosts, request-body size limit and request-latency metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.middleware.trustedhost import TrustedHostMiddleware

from app.api.errors import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodySizeLimitMiddleware:
    """Answer 413 (the uniform error body) to a request body over ``max_bytes``.

    The body is read up front (the route would read it all anyway) and replayed, so chunked
    uploads without ``Content-Length`` are limited too.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], then=receive), send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await send_error(
            scope,
            send,
            413,
            f"request body over {self.max_bytes} bytes (SENTSIM_MAX_REQUEST_BYTES): send fewer "
            "or shorter items per request",
            "payload_too_large",
        )


async def send_error(scope: Scope, send: Send, status: int, message: str, error_type: str) -> None:
    """Send the JSON error body for the request's path from middleware (``error_body``)."""
    payload = json.dumps(error_body(scope.get("path", ""), status, message, error_type)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


_HOST_ALLOWED = "sentsim.host_allowed"


async def _mark_allowed(scope: Scope, _receive: Receive, _send: Send) -> None:
    scope[_HOST_ALLOWED] = True


async def _discard(_message: Message) -> None:
    return None


class AllowedHostsMiddleware:
    """Answer 400 (the uniform error body) to a request whose ``Host`` is not allowed.

    The matching is Starlette's ``TrustedHostMiddleware`` (exact names, ``*.example.com``,
    ``*``); only its plain-text answer is replaced.

    Args:
        app: The wrapped app.
        allowed_hosts: Host names (without port).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed_hosts = list(allowed_hosts)
        self.allow_any = "*" in self.allowed_hosts
        self._check = TrustedHostMiddleware(_mark_allowed, self.allowed_hosts, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._check(scope, receive, _discard)
        if scope.pop(_HOST_ALLOWED, False):
            await self.app(scope, receive, send)
            return
        await send_error(
            scope,
            send,
            400,
            f"this server does not answer for that Host header; allowed: "
            f"{', '.join(self.allowed_hosts)} (SENTSIM_ALLOWED_HOSTS)",
            "invalid_host",
        )


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


class MetricsMiddleware:
    """Observe each request's latency under its route template (``/collections/{name}``).

    Args:
        app: The wrapped app.
        observe: Called with (method, route, status, seconds).
    """

    def __init__(self, app: ASGIApp, observe: Callable[[str, str, int, float], None]) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.observe(scope["method"], template, status, time.perf_counter() - start)
