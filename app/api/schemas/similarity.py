"""Similarity: TEI ``/similarity`` bodies and ``/similarity/explain``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.base import TRUNCATE, StrictBody

#: Most quadrature points one explanation may ask for (cost grows linearly with them).
MAX_EXPLAIN_STEPS = 256


class SimilarityInputs(StrictBody):
    """The sentence to compare and the sentences to compare it with."""

    source_sentence: str
    sentences: list[str] = Field(min_length=1)


class SimilarityParameters(StrictBody):
    """How to compare."""

    method: str = Field(
        default="cosine",
        description="cosine (sentence vectors); wmd or wrd (optimal transport over token "
        "vectors). Scores are higher-is-more-similar: cosine in [-1, 1], 1 - WRD in [-1, 1], "
        "1 / (1 + WMD) in (0, 1].",
    )
    transform: str | None = Field(
        default=None,
        description="A transform folder under models/ (e.g. fitted by sentsim fit-whitening); "
        "cosine only.",
    )
    alignment: bool = Field(
        default=False,
        description="wmd/wrd: also return, per sentence, the token pairs carrying most mass.",
    )
    truncate: bool = Field(default=False, description=TRUNCATE)


class SimilarityRequest(StrictBody):
    """TEI ``POST /similarity``; the response is one score per sentence, higher is closer."""

    model_config = ConfigDict(  # extra="forbid", allow_inf_nan=False: from StrictBody
        json_schema_extra={
            "examples": [
                {
                    "inputs": {
                        "source_sentence": "A man is playing a guitar.",
                        "sentences": ["Someone plays an instrument.", "A woman slices tomatoes."],
                    }
                }
            ]
        },
    )
    inputs: SimilarityInputs
    parameters: SimilarityParameters | None = None


class AlignedPair(BaseModel):
    """Mass moved from a source token to a target token by the optimal transport plan."""

    source: str
    target: str
    source_index: int = Field(description="Position of source in tokens[0].")
    target_index: int = Field(description="Position of target in this sentence's tokens.")
    mass: float = Field(description="Share of the total mass moved, in (0, 1].")


class SimilarityWithAlignment(BaseModel):
    """Scores (higher is more similar) and, per sentence, its heaviest token pairs."""

    scores: list[float]
    alignments: list[list[AlignedPair]]
    tokens: list[list[str]] = Field(
        description="Word pieces compared (special tokens left out): source_sentence's, then "
        "each sentence's."
    )


class ExplainRequest(StrictBody):
    """A pair whose cosine is attributed to its tokens by integrated gradients."""

    model_config = ConfigDict(  # extra="forbid", allow_inf_nan=False: from StrictBody
        json_schema_extra={
            "examples": [
                {
                    "source_sentence": "A man is playing a guitar.",
                    "sentence": "Someone plays an instrument.",
                    "steps": 50,
                }
            ]
        },
    )
    source_sentence: str
    sentence: str
    steps: int = Field(
        default=50,
        ge=1,
        le=MAX_EXPLAIN_STEPS,
        description="Quadrature points of the path integral: more, smaller completeness_error "
        "(and longer; about 10 ms a step for two short sentences on 2 CPU cores).",
    )
    merge_words: bool = Field(
        default=False, description="Sum word pieces into the words of the text."
    )
    truncate: bool = Field(default=False, description=TRUNCATE)


class TokenAttributionOut(BaseModel):
    """A token's share of ``score - baseline_score`` (cosine units): positive raised the
    similarity, negative lowered it."""

    token: str
    attribution: float


class ExplanationOut(BaseModel):
    """Integrated-gradients attribution of a pair's cosine to its tokens."""

    score: float = Field(description="Cosine of the pooled sentence vectors, in [-1, 1].")
    baseline_score: float = Field(description="The same cosine for the baseline inputs.")
    baseline: str = Field(description="What the baseline input is.")
    source: list[TokenAttributionOut]
    target: list[TokenAttributionOut]
    completeness_error: float = Field(
        description="|sum of attributions - (score - baseline_score)|: the quadrature's error."
    )
