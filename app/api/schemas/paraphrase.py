"""Paraphrase bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.schemas.base import StrictBody
from app.services.paraphrase import read_earlier_names


class ParaphraseRequest(StrictBody):
    """Paraphrases of a text: ``num_candidates`` sampled, the ``num_return_sequences`` most
    similar returned (Hugging Face's names; ``top_k`` / ``top_p`` are the sampling cut-offs).

    The body of earlier versions is still accepted: one that has ``top_k`` and no
    ``num_candidates`` is read the old way, ``num_return_sequences`` as the candidates
    sampled (default 32) and ``top_k`` as the paraphrases returned. To use the token cut-off
    ``top_k``, send ``num_candidates`` too.
    """

    model_config = ConfigDict(  # extra="forbid", allow_inf_nan=False: from StrictBody
        json_schema_extra={
            "examples": [
                {"text": "How do I reset my password?", "num_return_sequences": 5},
                {"text": "How do I reset my password?", "num_candidates": 32, "top_k": 40},
            ]
        },
    )
    text: str
    num_candidates: int = Field(default=32, ge=1, description="Candidates sampled (n).")
    num_return_sequences: int = Field(
        default=5, ge=1, description="Paraphrases returned, most similar first (k)."
    )
    top_k: int = Field(
        default=0,
        ge=0,
        description="Sample each token from the top_k most probable only (0: off). Without "
        "num_candidates, top_k is read the old way (paraphrases returned).",
    )
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    temperature: float = Field(default=1.0, ge=0.01, le=10.0)
    max_new_tokens: int = Field(default=32, ge=1)
    seed: int | None = Field(default=None, description="Same seed, same candidates.")
    truncate: bool = Field(
        default=False,
        description="Paraphrase the beginning of a text over the generator's 64 tokens instead "
        "of refusing it with 413; the X-Truncated-Inputs response header then says text.",
    )

    @model_validator(mode="before")
    @classmethod
    def _earlier_names(cls, data: Any) -> Any:
        """The earlier body: ``num_return_sequences`` = candidates, ``top_k`` = returned."""
        return read_earlier_names(data) if isinstance(data, dict) else data


class ParaphraseOut(BaseModel):
    """A paraphrase and its cosine to the input (SimBERT [CLS]), in [-1, 1]."""

    text: str
    score: float
