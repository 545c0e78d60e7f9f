"""The FastAPI app: ``create_app(settings)`` with a lifespan that loads the model once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import __version__
from app.api.errors import document_errors, redactor, register_exception_handlers
from app.api.main import api_router
from app.api.middleware import (
    AllowedHostsMiddleware,
    BodySizeLimitMiddleware,
    MetricsMiddleware,
)
from app.core.config import Settings, get_settings
from app.services.container import Services
from app.services.metrics import Metrics

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app. The model loads in the lifespan (start-up), not here, unless given.

    Args:
        settings: The configuration; ``None`` reads ``SENTSIM_*`` variables and ``.env``.
        services: Already built from ``settings`` (``sentsim serve`` loads the models first,
            so that a bad setting fails before the server starts); ``None``: built at start-up.

    Returns:
        The FastAPI application (Swagger UI at ``/docs``).
    """
    settings = settings or get_settings()
    metrics_holder: dict[str, Metrics] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = services or Services.build(settings)
        metrics_holder["metrics"] = running.metrics
        await running.start()
        app.state.services = running
        try:
            yield
        finally:
            app.state.services = None
            await running.stop()

    # Swagger UI and ReDoc from assets the fastapi-offline package ships: no CDN.
    app = FastAPIOffline(
        title="sentsim",
        version=__version__,
        description=(
            "Sentence similarity: embeddings (OpenAI- and TEI-compatible), similarity, and "
            "semantic search over persistent FAISS collections with BERT-whitening."
        ),
        lifespan=lifespan,
    )
    app.state.services = None
    server_folders = [
        (settings.models_dir, "<models folder>"),
        (settings.indexes_dir, "<indexes folder>"),
        (Path.cwd(), "<working folder>"),
    ]
    register_exception_handlers(app, redactor(server_folders))
    app.include_router(api_router)
    document_errors(app)

    def observe(method: str, route: str, status: int, seconds: float) -> None:
        metrics = metrics_holder.get("metrics")
        if metrics is not None:
            metrics.request_latency.labels(method, route, str(status)).observe(seconds)

    app.add_middleware(MetricsMiddleware, observe=observe)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(AllowedHostsMiddleware, allowed_hosts=settings.trusted_hosts())
    return app
