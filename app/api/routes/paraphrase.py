"""POST /paraphrase (SimBERT)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.api.errors import responses
from app.api.schemas import ParaphraseOut, ParaphraseRequest

router = APIRouter(tags=["paraphrase"])


@router.post(
    "/paraphrase",
    response_model=list[ParaphraseOut],
    responses=responses(400, 401, 413, 422, 503),
)
async def paraphrase(body: ParaphraseRequest, services: ServicesDep) -> list[ParaphraseOut]:
    """Up to ``top_k`` paraphrases, most similar first (503 until a generator is configured)."""
    results = await services.paraphrase.paraphrase(
        body.text,
        num_return_sequences=body.num_return_sequences,
        top_k=body.top_k,
        top_p=body.top_p,
        temperature=body.temperature,
        max_new_tokens=body.max_new_tokens,
        seed=body.seed,
    )
    return [ParaphraseOut(text=p.text, score=p.score) for p in results]
