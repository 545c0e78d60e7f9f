"""POST /paraphrase (SimBERT)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import ServicesDep
from app.api.errors import report_truncation, responses
from app.api.schemas.paraphrase import ParaphraseOut, ParaphraseRequest

router = APIRouter(tags=["paraphrase"])


@router.post(
    "/paraphrase",
    response_model=list[ParaphraseOut],
    responses=responses(400, 401, 413, 422, 503),
)
async def paraphrase(
    body: ParaphraseRequest, services: ServicesDep, response: Response
) -> list[ParaphraseOut]:
    """Up to ``num_return_sequences`` paraphrases, most similar first (503 when no generator
    is loaded).

    A text over the generator's limit (64 tokens) is refused (413) unless ``truncate``; then
    the ``X-Truncated-Inputs`` header says ``text``."""
    results, truncated = await services.paraphrase.paraphrase(
        body.text,
        num_candidates=body.num_candidates,
        num_return_sequences=body.num_return_sequences,
        top_k=body.top_k,
        top_p=body.top_p,
        temperature=body.temperature,
        max_new_tokens=body.max_new_tokens,
        seed=body.seed,
        truncate=body.truncate,
    )
    report_truncation(response, ["text"] if truncated else [])
    return [ParaphraseOut(text=p.text, score=p.score) for p in results]
