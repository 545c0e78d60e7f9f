"""POST /similarity (TEI-compatible body)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import EmbeddingsDep
from app.api.errors import responses
from app.api.schemas import SimilarityParameters, SimilarityRequest

router = APIRouter(tags=["similarity"])


@router.post("/similarity", responses=responses(400, 401, 404, 413, 422, 429, 503))
async def similarity(body: SimilarityRequest, service: EmbeddingsDep) -> list[float]:
    """Similarity of ``source_sentence`` to each sentence: cosine in [-1, 1], higher is closer,
    of the raw vectors or of those corrected by the named ``parameters.transform``."""
    params = body.parameters or SimilarityParameters()
    return await service.similarity(
        body.inputs.source_sentence,
        body.inputs.sentences,
        method=params.method,
        transform=params.transform,
    )
