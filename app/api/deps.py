"""Dependencies: the services built in the lifespan, and the API-key check.

All are ``async def``: they do not block, and FastAPI would run a plain ``def`` dependency in
its thread pool — a thread hand-off per dependency per request.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request

from app.core.errors import NotReadyError, UnauthorizedError
from app.services.clustering import ClusterService
from app.services.collections import CollectionService
from app.services.container import Services
from app.services.drift import DriftService
from app.services.embeddings import EmbeddingService
from app.services.search import SearchService


async def get_services(request: Request) -> Services:
    """The ``Services`` built by the lifespan. Raises ``NotReadyError`` before start-up."""
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise NotReadyError("the service is starting; the model is not loaded yet")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_embeddings(services: ServicesDep) -> EmbeddingService:
    """The embedding and similarity service."""
    return services.embeddings


async def get_collections(services: ServicesDep) -> CollectionService:
    """The collection service."""
    return services.collections


EmbeddingsDep = Annotated[EmbeddingService, Depends(get_embeddings)]


async def get_search(services: ServicesDep) -> SearchService:
    """The search service."""
    return services.search


async def get_drift(services: ServicesDep) -> DriftService:
    """The drift and comparison service."""
    return services.drift


async def get_clustering(services: ServicesDep) -> ClusterService:
    """The clustering and duplicates service."""
    return services.clustering


ClusteringDep = Annotated[ClusterService, Depends(get_clustering)]
CollectionsDep = Annotated[CollectionService, Depends(get_collections)]
DriftDep = Annotated[DriftService, Depends(get_drift)]
SearchDep = Annotated[SearchService, Depends(get_search)]


async def require_api_key(request: Request, services: ServicesDep) -> None:
    """With ``SENTSIM_API_KEY`` set, require ``Authorization: Bearer <key>`` (the raw header is
    compared, as bytes; ``errors.document_errors`` declares the scheme in the OpenAPI).

    Raises:
        UnauthorizedError: The header is missing or the key is wrong.
    """
    key = services.settings.api_key
    if key is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # HTTP headers are bytes; Starlette decodes them as Latin-1, so encoding back as Latin-1
    # gives the bytes sent, which a client sends as UTF-8 for a non-ASCII key.
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.encode("latin-1"), key.get_secret_value().encode("utf-8")
    ):
        raise UnauthorizedError("missing or wrong API key: send Authorization: Bearer <key>")
