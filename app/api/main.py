"""``api_router``: every route; all but /health and /playground behind the optional API key."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import require_api_key
from app.api.routes import collections, embeddings, health, paraphrase, playground, similarity

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(playground.router)  # a static page; it asks for the key itself
protected = [Depends(require_api_key)]
api_router.include_router(embeddings.router, dependencies=protected)
api_router.include_router(similarity.router, dependencies=protected)
api_router.include_router(collections.router, dependencies=protected)
api_router.include_router(paraphrase.router, dependencies=protected)
