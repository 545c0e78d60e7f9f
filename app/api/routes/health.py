"""GET /health, /info, /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import ServicesDep, require_api_key
from app.api.errors import responses
from app.api.schemas.health import Health
from app.core.errors import NotReadyError

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses=responses(503))
def health(services: ServicesDep) -> dict[str, Any]:
    """200 when the model serves requests: ``ok``, or ``degraded`` with ``reasons`` (read-only
    or unavailable collections, a failed write), so that a load balancer keeps sending reads
    and embeddings; 503 when the model is not loaded. No API key needed."""
    status = services.health()
    if status["status"] == "unavailable":
        raise NotReadyError(f"not ready: model {status['model']}, store {status['store']}")
    return status


@router.get("/info", dependencies=[Depends(require_api_key)], responses=responses(401))
def info(services: ServicesDep) -> dict[str, Any]:
    """Model, pooling, dimension, precision, limits and version."""
    return services.info()


@router.get(
    "/metrics",
    dependencies=[Depends(require_api_key)],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **responses(401)},
)
def metrics(services: ServicesDep) -> Response:
    """Prometheus text format: request latency, model batch sizes, queue depth."""
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
