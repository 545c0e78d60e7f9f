"""Paraphrase bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.base import StrictBody


class ParaphraseRequest(StrictBody):
    """Paraphrases of a text: n candidates sampled, the k most similar returned."""

    model_config = ConfigDict(  # extra="forbid", allow_inf_nan=False: from StrictBody
        json_schema_extra={"examples": [{"text": "How do I reset my password?", "top_k": 5}]},
    )
    text: str
    num_return_sequences: int = Field(default=32, ge=1, description="Candidates sampled (n).")
    top_k: int = Field(default=5, ge=1, description="Paraphrases returned (k).")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    temperature: float = Field(default=1.0, ge=0.01, le=10.0)
    max_new_tokens: int = Field(default=32, ge=1)
    seed: int | None = Field(default=None, description="Same seed, same candidates.")
    truncate: bool = Field(
        default=False,
        description="Paraphrase the beginning of a text over the generator's 64 tokens instead "
        "of refusing it with 413; the X-Truncated-Inputs response header then says text.",
    )


class ParaphraseOut(BaseModel):
    """A paraphrase and its cosine to the input (SimBERT [CLS]), in [-1, 1]."""

    text: str
    score: float
