"""OpenAI-compatible ``/v1/embeddings`` and ``/v1/models``; TEI-compatible ``/embed`` and ``/``."""

from __future__ import annotations

import base64
import time

import numpy as np
from fastapi import APIRouter, Response

from app.api.deps import EmbeddingsDep
from app.api.errors import report_truncation, responses
from app.api.schemas import (
    EmbeddingItem,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    ModelCard,
    ModelList,
    Usage,
)

router = APIRouter(tags=["embeddings"])

_STARTED = int(time.time())


@router.post(
    "/v1/embeddings",
    response_model=EmbeddingsResponse,
    responses=responses(400, 401, 404, 413, 422, 429, 503, openai=True),
)
async def openai_embeddings(
    body: EmbeddingsRequest, service: EmbeddingsDep, response: Response
) -> EmbeddingsResponse:
    """OpenAI-compatible embeddings: L2-normalised float32 vectors, as floats or base64.

    Inputs longer than the model's limit are refused (413) unless ``truncate`` is true; the
    inputs cut are then listed in the ``X-Truncated-Inputs`` header. Errors come in OpenAI's
    shape.
    """
    model = service.check_model(body.model)
    sentences = [body.input] if isinstance(body.input, str) else body.input
    embedded = await service.embed(
        sentences, dimensions=body.dimensions, truncate=body.truncate, what="input"
    )
    report_truncation(response, [f"input[{i}]" for i in embedded.truncated])
    data = [
        EmbeddingItem(
            index=i,
            embedding=(
                base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
                if body.encoding_format == "base64"
                else v.tolist()
            ),
        )
        for i, v in enumerate(embedded.vectors)
    ]
    return EmbeddingsResponse(
        data=data,
        model=model,
        usage=Usage(prompt_tokens=embedded.tokens, total_tokens=embedded.tokens),
    )


@router.get("/v1/models", response_model=ModelList, responses=responses(401, 503, openai=True))
def openai_models(service: EmbeddingsDep) -> ModelList:
    """The model names ``/v1/embeddings`` answers to (``SENTSIM_SERVED_MODEL_NAMES``)."""
    names = [n for n in service.served_model_names if n != "*"]
    return ModelList(data=[ModelCard(id=n, created=_STARTED) for n in names])


@router.get(
    "/v1/models/{model:path}",
    response_model=ModelCard,
    responses=responses(401, 404, 503, openai=True),
)
def openai_model(model: str, service: EmbeddingsDep) -> ModelCard:
    """One served model name (404 in OpenAI's shape for another)."""
    return ModelCard(id=service.check_model(model), created=_STARTED)


@router.post("/embed", responses=responses(400, 401, 413, 422, 429, 503))
async def tei_embed(
    body: EmbedRequest, service: EmbeddingsDep, response: Response
) -> list[list[float]]:
    """TEI-compatible embeddings: one vector per input (normalised unless ``normalize`` is off).

    Inputs longer than the model's limit are refused (413) unless ``truncate`` is on; the
    inputs cut are then listed in the ``X-Truncated-Inputs`` header.
    """
    sentences = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    embedded = await service.embed(sentences, normalize=body.normalize, truncate=body.truncate)
    report_truncation(response, [f"inputs[{i}]" for i in embedded.truncated])
    return [v.tolist() for v in embedded.vectors]


router.add_api_route(
    "/",
    tei_embed,
    methods=["POST"],
    responses=responses(400, 401, 413, 422, 429, 503),
    summary="Tei Embed (root)",
    description="TEI serves its embed route at ``POST /`` too (huggingface_hub's "
    "``InferenceClient(base_url=...)`` posts there): the same as ``POST /embed``.",
    operation_id="tei_embed_root",
)
