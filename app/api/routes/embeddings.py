"""POST /v1/embeddings (OpenAI-compatible) and POST /embed (TEI-compatible)."""

from __future__ import annotations

import base64

import numpy as np
from fastapi import APIRouter

from app.api.deps import EmbeddingsDep
from app.api.errors import responses
from app.api.schemas import (
    EmbeddingItem,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    Usage,
)
from app.core.errors import NotFoundError
from app.encoding.registry import ALIASES

router = APIRouter(tags=["embeddings"])


@router.post(
    "/v1/embeddings",
    response_model=EmbeddingsResponse,
    responses=responses(400, 401, 404, 413, 422, 429, 503),
)
async def openai_embeddings(body: EmbeddingsRequest, service: EmbeddingsDep) -> EmbeddingsResponse:
    """OpenAI-compatible embeddings: L2-normalised float32 vectors, as floats or base64."""
    served = service.encoder.model_name
    if body.model is not None and ALIASES.get(body.model, body.model) != served:
        raise NotFoundError(f"model {body.model!r} is not served here; this server runs {served!r}")
    sentences = [body.input] if isinstance(body.input, str) else body.input
    vectors = await service.embed(sentences, normalize=True, dimensions=body.dimensions)
    tokens = sum(service.check_length(sentences, truncate=True))
    data = [
        EmbeddingItem(
            index=i,
            embedding=(
                base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
                if body.encoding_format == "base64"
                else v.tolist()
            ),
        )
        for i, v in enumerate(vectors)
    ]
    return EmbeddingsResponse(
        data=data, model=served, usage=Usage(prompt_tokens=tokens, total_tokens=tokens)
    )


@router.post("/embed", responses=responses(400, 401, 413, 422, 429, 503))
async def tei_embed(body: EmbedRequest, service: EmbeddingsDep) -> list[list[float]]:
    """TEI-compatible embeddings: one vector per input (normalised unless ``normalize`` is off).

    Inputs longer than the model's limit are refused (413) unless ``truncate`` is on.
    """
    sentences = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    service.limits.check_sentences(sentences, "inputs")
    service.check_length(sentences, truncate=body.truncate)
    vectors = await service.embed(sentences, normalize=body.normalize)
    return [v.tolist() for v in vectors]
