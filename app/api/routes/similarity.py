"""POST /similarity (TEI-compatible body)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import EmbeddingsDep
from app.api.errors import report_truncation, responses
from app.api.schemas.similarity import (
    ExplainRequest,
    ExplanationOut,
    SimilarityParameters,
    SimilarityRequest,
    SimilarityWithAlignment,
)

router = APIRouter(tags=["similarity"])


@router.post(
    "/similarity",
    response_model=list[float] | SimilarityWithAlignment,
    responses=responses(400, 401, 404, 413, 422, 429, 503),
)
async def similarity(
    body: SimilarityRequest, service: EmbeddingsDep, response: Response
) -> list[float] | SimilarityWithAlignment:
    """Similarity of ``source_sentence`` to each sentence, higher is more similar: cosine of
    the (optionally transformed) sentence vectors, or 1 - WRD / 1 / (1 + WMD) of the token
    vectors. With ``parameters.alignment`` the answer is ``{"scores", "alignments"}``.

    Sentences over the model's limit are refused (413) unless ``parameters.truncate``; those
    cut are then named in the ``X-Truncated-Inputs`` header."""
    params = body.parameters or SimilarityParameters()
    result = await service.similarity(
        body.inputs.source_sentence,
        body.inputs.sentences,
        method=params.method,
        transform=params.transform,
        with_alignment=params.alignment,
        truncate=params.truncate,
    )
    report_truncation(
        response,
        ["source_sentence" if i == 0 else f"sentences[{i - 1}]" for i in result.truncated],
    )
    if result.alignments is None:
        return result.scores
    return SimilarityWithAlignment.model_validate(
        {"scores": result.scores, "alignments": result.alignments, "tokens": result.word_pieces}
    )


@router.post(
    "/similarity/explain",
    response_model=ExplanationOut,
    responses=responses(400, 401, 409, 413, 422, 429, 503),
)
async def explain(
    body: ExplainRequest, service: EmbeddingsDep, response: Response
) -> ExplanationOut:
    """Why two sentences are similar: the cosine of their pooled vectors (no transform)
    attributed to each token by integrated gradients (Sundararajan et al., 2017), along the
    straight path from a baseline of [PAD] word pieces ([CLS]/[SEP] kept) to the pair.
    Attributions add up to ``score - baseline_score`` within ``completeness_error``.

    409 for a model that cannot be explained (int8 precision). Sentences over the model's
    limit are refused (413) unless ``truncate``; those cut are named in
    ``X-Truncated-Inputs``."""
    result, truncated = await service.explain(
        body.source_sentence,
        body.sentence,
        n_steps=body.steps,
        merge_words=body.merge_words,
        truncate=body.truncate,
    )
    report_truncation(response, [("source_sentence", "sentence")[i] for i in truncated])
    return ExplanationOut.model_validate(result, from_attributes=True)
