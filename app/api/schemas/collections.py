"""Collections: create, upsert, search, whitening refit."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from app.api.schemas.base import NAME_PATTERN, TRUNCATE, Scalar, StrictBody
from app.services.collections import SPEC_BOUNDS, SPEC_GRAMMAR, SPEC_PATTERN
from app.services.identifiers import DOCUMENT_ID_PATTERN

#: BERT-whitening's k, named as in the paper's code and scikit-learn's PCA; ``k`` (the name of
#: earlier versions) is accepted too.
_N_COMPONENTS = AliasChoices("n_components", "k")


class WhiteningSpec(StrictBody):
    """BERT-whitening knobs: n_components (k, alias ``k``), beta (mean removal), gamma
    (variance scaling)."""

    n_components: int | None = Field(
        default=None,
        ge=1,
        validation_alias=_N_COMPONENTS,
        description="Components kept (k; null: d). Alias: k.",
    )
    beta: float = Field(default=1.0, ge=0.0, le=1.0)
    gamma: float = Field(default=1.0, ge=0.0, le=1.0)


class CollectionCreate(StrictBody):
    """A new collection: its name, index type and optional whitening knobs."""

    model_config = ConfigDict(  # extra="forbid", allow_inf_nan=False: from StrictBody
        json_schema_extra={"examples": [{"name": "faq", "index": "flat"}]},
    )
    name: str = Field(pattern=NAME_PATTERN, description="[a-z0-9_-]{1,64}")
    index: str = Field(
        default="flat",
        description=f"{SPEC_GRAMMAR} (flat: exact; hnsw: HNSW32; {SPEC_BOUNDS}).",
        # In the schema for clients and fuzzers; checked by the service, whose 422 lists the
        # accepted forms and bounds rather than a regular expression.
        json_schema_extra={"pattern": SPEC_PATTERN},
    )
    whitening: WhiteningSpec | None = Field(
        default=None, description="Knobs used by POST /collections/{name}/whitening."
    )
    transform: str | None = Field(
        default=None,
        description="A fitted transform under models/ (sentsim fit-whitening or fit-flow) "
        "applied to documents and queries, instead of the collection's own whitening.",
    )


class WhiteningDrift(BaseModel):
    """How far a collection's documents have moved from the corpus its whitening was fitted
    on: W2 between Gaussians of the raw vectors, and relative to that corpus's spread."""

    w2: float = Field(description="2-Wasserstein distance, >= 0, in the raw vectors' units.")
    relative: float = Field(description="w2 / sqrt(trace of the fitting corpus's covariance).")
    threshold: float = Field(description="SENTSIM_WHITENING_DRIFT_THRESHOLD.")
    drifted: bool | None = Field(
        default=None,
        description="relative > threshold: refit (POST .../whitening). null: fewer documents "
        "than dimensions, too few to judge.",
    )
    n: int = Field(description="Documents.")
    reference_n: int = Field(description="Vectors the whitening was fitted on.")


class CollectionInfo(BaseModel):
    """A collection: size, vector dimension, index type and transform. ``status``: ``ready``;
    ``read_only`` (the indexes folder is not writable); ``unavailable`` (it could not be opened:
    ``reason`` says why, and only its name is known)."""

    name: str
    status: Literal["ready", "read_only", "unavailable"] = "ready"
    reason: str | None = None
    count: int | None = None
    dimension: int | None = None
    index: str | None = None
    transform: str | dict[str, Any] | None = None
    whitening_drift: WhiteningDrift | None = Field(
        default=None, description="With a whitening: how far the documents moved from its fit."
    )


class CollectionList(BaseModel):
    """All collections."""

    collections: list[CollectionInfo]


class DocumentIn(StrictBody):
    """A document to store: an id (generated if omitted), its text and metadata."""

    id: str | None = Field(
        default=None,
        max_length=256,
        pattern=DOCUMENT_ID_PATTERN,
        description="Any printable text, '/' included (not '.' or '..' between slashes).",
    )
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpsertRequest(StrictBody):
    """Documents to insert or replace (an existing id is replaced)."""

    model_config = ConfigDict(  # extra="forbid", allow_inf_nan=False: from StrictBody
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
    truncate: bool = Field(
        default=False,
        description="Store texts longer than the model's limit with vectors of their beginning "
        "(else 413); the response lists the ids of those cut. The stored text stays whole.",
    )


class UpsertResponse(BaseModel):
    """The ids of the stored documents, in request order."""

    ids: list[str]
    truncated: list[str] = Field(
        default_factory=list,
        description="Ids of documents whose vectors were computed from a truncated text.",
    )


class DocumentOut(BaseModel):
    """A stored document."""

    id: str
    text: str
    metadata: dict[str, Any]


class RerankSpec(StrictBody):
    """Rerank the first ``candidates`` vector-search hits by optimal transport."""

    method: Literal["wrd", "wmd"] = "wrd"
    candidates: int = Field(default=50, ge=1, description="First-stage hits to rerank.")


class SearchRequest(StrictBody):
    """Semantic search: one ``query`` or a batch of ``queries``, optionally reranked."""

    model_config = ConfigDict(  # extra="forbid", allow_inf_nan=False: from StrictBody
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
    truncate: bool = Field(default=False, description=TRUNCATE)

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


class WhiteningRefit(StrictBody):
    """Knobs for a refit; each one omitted keeps the collection's (standard whitening if none
    were given at creation)."""

    n_components: int | None = Field(
        default=None, ge=1, validation_alias=_N_COMPONENTS, description="Alias: k."
    )
    beta: float | None = Field(default=None, ge=0.0, le=1.0)
    gamma: float | None = Field(default=None, ge=0.0, le=1.0)
