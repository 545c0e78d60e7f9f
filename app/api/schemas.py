"""Request and response bodies (the wire shapes), with OpenAPI examples.

Limits that are settings (sentences per request, characters, top_k, documents per upsert) are
checked by the services, so they stay configurable; shapes and types are checked here.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scalar = str | int | float | bool | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _finite(value: Any, where: str = "metadata") -> Any:
    """Reject NaN and infinities anywhere in a JSON value (they are not JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} holds {value}, which is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite(v, f"{where}[{i}]")
    return value


# --- embeddings ---------------------------------------------------------------------------


class EmbeddingsRequest(_Body):
    """OpenAI ``POST /v1/embeddings``."""

    model_config = ConfigDict(
        extra="ignore",  # OpenAI clients may send fields this server does not use
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"input": ["A man is playing a guitar."]}]},
    )
    input: str | list[str] = Field(description="A sentence or a list of sentences.")
    model: str | None = Field(default=None, description="The served model's name, or omit it.")
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: little-endian float32 bytes, base64-encoded."
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Keep the first n components, renormalised."
    )
    user: str | None = None


class EmbeddingItem(BaseModel):
    """One vector of an OpenAI embeddings response."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    """Token counts (the model's own tokenizer, special tokens included)."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    """OpenAI embeddings response: L2-normalised vectors."""

    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class EmbedRequest(_Body):
    """TEI ``POST /embed``."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"inputs": ["What is Deep Learning?"], "normalize": True}]},
    )
    inputs: str | list[str]
    normalize: bool = True
    truncate: bool = Field(
        default=False, description="Cut inputs longer than the model's limit (else 413)."
    )


# --- similarity ---------------------------------------------------------------------------


class SimilarityInputs(_Body):
    """The sentence to compare and the sentences to compare it with."""

    source_sentence: str
    sentences: list[str] = Field(min_length=1)


class SimilarityParameters(_Body):
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


class SimilarityRequest(_Body):
    """TEI ``POST /similarity``; the response is one score per sentence, higher is closer."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
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
    mass: float


class SimilarityWithAlignment(BaseModel):
    """Scores (higher is more similar) and, per sentence, its heaviest token pairs."""

    scores: list[float]
    alignments: list[list[AlignedPair]]


# --- collections --------------------------------------------------------------------------


class WhiteningSpec(_Body):
    """BERT-whitening knobs: k components, beta (mean removal), gamma (variance scaling)."""

    k: int | None = Field(default=None, ge=1)
    beta: float = Field(default=1.0, ge=0.0, le=1.0)
    gamma: float = Field(default=1.0, ge=0.0, le=1.0)


class CollectionCreate(_Body):
    """A new collection: its name, index type and optional whitening knobs."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"name": "faq", "index": "flat"}]},
    )
    name: str = Field(description="[a-z0-9_-]{1,64}")
    index: str = Field(
        default="flat", description="flat (exact), hnsw, or a FAISS index_factory string."
    )
    whitening: WhiteningSpec | None = Field(
        default=None, description="Knobs used by POST /collections/{name}/whitening."
    )
    transform: str | None = Field(
        default=None,
        description="A fitted transform under models/ (sentsim fit-whitening or fit-flow) "
        "applied to documents and queries, instead of the collection's own whitening.",
    )


class CollectionInfo(BaseModel):
    """A collection: size, vector dimension, index type and transform."""

    name: str
    count: int
    dimension: int
    index: str
    transform: str | dict[str, Any]


class CollectionList(BaseModel):
    """All collections."""

    collections: list[CollectionInfo]


class DocumentIn(_Body):
    """A document to store: an id (generated if omitted), its text and metadata."""

    id: str | None = Field(default=None, min_length=1, max_length=256)
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _metadata_is_finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        return dict(_finite(value))


class UpsertRequest(_Body):
    """Documents to insert or replace (an existing id is replaced)."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "documents": [
                        {
                            "id": "q1",
                            "text": "How do I reset my password?",
                            "metadata": {"lang": "en"},
                        }
                    ]
                }
            ]
        },
    )
    documents: list[DocumentIn]


class UpsertResponse(BaseModel):
    """The ids of the stored documents, in request order."""

    ids: list[str]


class DocumentOut(BaseModel):
    """A stored document."""

    id: str
    text: str
    metadata: dict[str, Any]


class RerankSpec(_Body):
    """Rerank the first ``candidates`` vector-search hits by optimal transport."""

    method: Literal["wrd", "wmd"] = "wrd"
    candidates: int = Field(default=50, ge=1, description="First-stage hits to rerank.")


class SearchRequest(_Body):
    """Semantic search: one ``query`` or a batch of ``queries``, optionally reranked."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"query": "forgot my password", "top_k": 5}]},
    )
    query: str | None = None
    queries: list[str] | None = None
    top_k: int = Field(default=10, ge=1)
    filter: dict[str, Scalar] | None = Field(
        default=None, description="Metadata equality on every key (JSON scalars)."
    )
    rerank: RerankSpec | None = Field(
        default=None, description="Reorder the first stage's hits by WRD or WMD."
    )

    @model_validator(mode="after")
    def _one_of_query_or_queries(self) -> SearchRequest:
        if (self.query is None) == (self.queries is None):
            raise ValueError("give exactly one of 'query' (a string) or 'queries' (a list)")
        return self


class Hit(BaseModel):
    """A search result. ``score`` is higher-is-closer: cosine in [-1, 1]; after a rerank
    1 - WRD in [-1, 1] or 1 / (1 + WMD) in (0, 1], with the first stage's cosine as
    ``vector_score`` and the transport ``distance`` (lower is closer)."""

    id: str
    text: str
    score: float
    metadata: dict[str, Any]
    vector_score: float | None = None
    distance: float | None = None


class SearchResponse(BaseModel):
    """Hits of a single ``query``, best first."""

    hits: list[Hit]


class BatchSearchResponse(BaseModel):
    """One hit list per query of ``queries``."""

    results: list[list[Hit]]


class WhiteningRefit(_Body):
    """Knobs for a refit; each one omitted keeps the collection's (standard whitening if none
    were given at creation)."""

    k: int | None = Field(default=None, ge=1)
    beta: float | None = Field(default=None, ge=0.0, le=1.0)
    gamma: float | None = Field(default=None, ge=0.0, le=1.0)


# --- paraphrase ---


class ParaphraseRequest(_Body):
    """Paraphrases of a text: n candidates sampled, the k most similar returned."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"text": "How do I reset my password?", "top_k": 5}]},
    )
    text: str
    num_return_sequences: int = Field(default=32, ge=1, description="Candidates sampled (n).")
    top_k: int = Field(default=5, ge=1, description="Paraphrases returned (k).")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    temperature: float = Field(default=1.0, gt=0.0, le=10.0)
    max_new_tokens: int = Field(default=32, ge=1)
    seed: int | None = Field(default=None, description="Same seed, same candidates.")


class ParaphraseOut(BaseModel):
    """A paraphrase and its cosine to the input (SimBERT [CLS]), in [-1, 1]."""

    text: str
    score: float


# --- health -------------------------------------------------------------------------------


class Health(BaseModel):
    """Component status."""

    status: str
    model: str
    store: str
