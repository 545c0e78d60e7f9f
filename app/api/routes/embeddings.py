"""OpenAI-compatible ``/v1/embeddings`` and ``/v1/models``; TEI-compatible ``/embed`` and ``/``."""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Response

from app.api.deps import EmbeddingsDep
from app.api.errors import report_truncation, responses
from app.api.schemas.embeddings import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    ModelCard,
    ModelList,
)

router = APIRouter(tags=["embeddings"])

_STARTED = int(time.time())


@router.post(
    "/v1/embeddings",
    response_model=EmbeddingsResponse,
    responses=responses(400, 401, 404, 413, 422, 429, 503, openai=True),
)
async def openai_embeddings(body: EmbeddingsRequest, service: EmbeddingsDep) -> Response:
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
    vectors = np.ascontiguousarray(embedded.vectors, dtype="<f4")
    rows: list[Any] = (
        [base64.b64encode(v.tobytes()).decode() for v in vectors]
        if body.encoding_format == "base64"
        else list(vectors)
    )
    usage = {"prompt_tokens": embedded.prompt_tokens, "total_tokens": embedded.prompt_tokens}
    content = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)
        ],
        "model": model,
        "usage": usage,
    }
    response = _json(content)
    report_truncation(response, [f"input[{i}]" for i in embedded.truncated])
    return response


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


@router.post(
    "/embed",
    response_model=list[list[float]],
    responses=responses(400, 401, 413, 422, 429, 503),
)
async def tei_embed(body: EmbedRequest, service: EmbeddingsDep) -> Response:
    """TEI-compatible embeddings: one vector per input (normalised unless ``normalize`` is off).

    Inputs longer than the model's limit are refused (413) unless ``truncate`` is on; the
    inputs cut are then listed in the ``X-Truncated-Inputs`` header.
    """
    sentences = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    embedded = await service.embed(sentences, normalize=body.normalize, truncate=body.truncate)
    response = _json(np.ascontiguousarray(embedded.vectors, dtype=np.float32))
    report_truncation(response, [f"inputs[{i}]" for i in embedded.truncated])
    return response


def _json(content: Any) -> Response:
    """A JSON response written by orjson, float32 arrays included (their shortest float32
    form), without a second validation through a response model: these are the hot routes."""
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )


router.add_api_route(
    "/",
    tei_embed,
    methods=["POST"],
    response_model=list[list[float]],
    responses=responses(400, 401, 413, 422, 429, 503),
    summary="Tei Embed (root)",
    description="TEI serves its embed route at ``POST /`` too (huggingface_hub's "
    "``InferenceClient(base_url=...)`` posts there): the same as ``POST /embed``.",
    operation_id="tei_embed_root",
)
