"""Request and response bodies (the wire shapes), with OpenAPI examples.

Limits that are settings (sentences per request, characters, top_k, documents per upsert) are
checked by the services, so they stay configurable; shapes and types are checked here.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.index.faiss_index import SPEC_BOUNDS, SPEC_GRAMMAR, SPEC_PATTERN
from app.services.collections import COLLECTION_NAME_PATTERN, DOCUMENT_ID_PATTERN

Scalar = str | int | float | bool | None

#: Collection names, as the service checks them (the schema carries it for clients and fuzzers).
NAME_PATTERN = f"^{COLLECTION_NAME_PATTERN}$"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Most quadrature points one explanation may ask for (cost grows linearly with them).
MAX_EXPLAIN_STEPS = 256


def check_json(value: Any, where: str = "body") -> None:
    """Refuse what a JSON body can carry but the service cannot store or answer with: strings
    (keys included) that are not valid Unicode (lone surrogates such as ``"\\ud800"``),
    integers outside int64 (SQLite's range), and NaN or infinities. Iterative, so any nesting
    depth is safe.

    Raises:
        PydanticCustomError: ``invalid_json_value``, naming the field (``documents[0].text``).
    """
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        problem = None
        if isinstance(item, str):
            if not _is_unicode(item):
                problem = "is not valid Unicode (it holds a lone surrogate, e.g. \\ud800)"
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:
            problem = "is an integer outside the 64-bit signed range"
        elif isinstance(item, float) and not math.isfinite(item):
            problem = f"holds {item}, which is not a finite number"
        elif isinstance(item, dict):
            for key, child in item.items():
                label = key if _is_unicode(key) else ascii(key)
                stack.append((key, f"a key of {path}"))
                stack.append((child, label if path == "body" else f"{path}.{label}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
        if problem is not None:
            raise PydanticCustomError(
                "invalid_json_value", "{where} {problem}", {"where": path, "problem": problem}
            )


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _valid_json_values(cls, data: Any) -> Any:
        check_json(data)
        return data


# --- embeddings ---------------------------------------------------------------------------


class EmbeddingsRequest(_Body):
    """OpenAI ``POST /v1/embeddings``."""

    model_config = ConfigDict(
        extra="ignore",  # OpenAI clients may send fields this server does not use
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"input": ["A man is playing a guitar."]}]},
    )
    input: str | list[str] = Field(
        description="A sentence or a list of up to 2,048 sentences (SENTSIM_MAX_CLIENT_BATCH_SIZE)"
        ". Text only: token-id arrays are refused (this server tokenizes with its own model)."
    )
    model: str | None = Field(
        default=None,
        description="A served name (GET /v1/models; SENTSIM_SERVED_MODEL_NAMES), or omit it.",
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: little-endian float32 bytes, base64-encoded."
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Keep the first n components, renormalised."
    )
    user: str | None = None
    truncate: bool = Field(
        default=False,
        description="sentsim's extension (OpenAI SDKs: extra_body={'truncate': True}): cut inputs"
        " longer than the model's limit instead of refusing them with 413. Truncated inputs are "
        "listed in the X-Truncated-Inputs response header.",
    )

    @field_validator("input", mode="before")
    @classmethod
    def _text_not_token_ids(cls, value: Any) -> Any:
        first = value[0] if isinstance(value, list) and value else None
        if isinstance(first, list) or (isinstance(first, int) and not isinstance(first, bool)):
            raise PydanticCustomError("token_ids", TOKEN_IDS)
        return value


#: What ``truncate`` means on every route that has it.
TRUNCATE = (
    "Cut inputs longer than the model's limit (max_seq_length tokens) instead of refusing "
    "them with 413; the inputs cut are named in the X-Truncated-Inputs response header."
)

#: The answer to token-id input (LangChain's OpenAIEmbeddings sends it by default).
TOKEN_IDS = (
    "input holds token ids; this server tokenizes text with its own model, so send the "
    "sentences as strings (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))"
)


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


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models`` (OpenAI's model object)."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time the server started.")
    owned_by: str = "sentsim"


class ModelList(BaseModel):
    """``GET /v1/models``: the names the OpenAI routes answer to."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class EmbedRequest(_Body):
    """TEI ``POST /embed`` (and ``POST /``)."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"inputs": ["What is Deep Learning?"], "normalize": True}]},
    )
    inputs: str | list[str]
    normalize: bool = True
    truncate: bool = Field(default=False, description=TRUNCATE)
    truncation_direction: Literal["right", "Right"] = Field(
        default="right", description="TEI's; only the end of an input is ever cut."
    )
    prompt_name: None = Field(default=None, description="TEI's; this server has no prompts.")


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
    truncate: bool = Field(default=False, description=TRUNCATE)


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


class ExplainRequest(_Body):
    """A pair whose cosine is attributed to its tokens by integrated gradients."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
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


class DocumentIn(_Body):
    """A document to store: an id (generated if omitted), its text and metadata."""

    id: str | None = Field(
        default=None,
        max_length=256,
        pattern=DOCUMENT_ID_PATTERN,
        description="Any printable text, '/' included (not '.' or '..' between slashes).",
    )
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


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


class WhiteningRefit(_Body):
    """Knobs for a refit; each one omitted keeps the collection's (standard whitening if none
    were given at creation)."""

    k: int | None = Field(default=None, ge=1)
    beta: float | None = Field(default=None, ge=0.0, le=1.0)
    gamma: float | None = Field(default=None, ge=0.0, le=1.0)


class CompareRequest(_Body):
    """The collection to compare with."""

    against: str = Field(pattern=NAME_PATTERN, description="Another collection's name.")


class GaussianDistancesOut(BaseModel):
    """Distances between Gaussians fitted to two sets of vectors, in the index's space
    (0: the same distribution; larger: further apart)."""

    w2: float = Field(description="2-Wasserstein (Fréchet) distance, >= 0.")
    kl: float = Field(description="KL divergence of the first set from the second, nats, >= 0.")
    bhattacharyya: float = Field(description="Bhattacharyya distance, >= 0, symmetric.")
    ridge: float = Field(
        description="Added to both covariances' diagonals for kl and "
        "bhattacharyya (rank-deficient covariances)."
    )
    n: int = Field(description="Vectors in the first set.")
    reference_n: int = Field(description="Vectors in the second set.")


class ClustersRequest(_Body):
    """How to cluster a collection's documents."""

    method: Literal["infomap", "threshold"] = Field(
        default="infomap",
        description="infomap: the map equation on the kNN graph (needs the optional infomap "
        "package; else threshold runs and `note` says so). threshold: sentence-transformers' "
        "community detection.",
    )
    k: int = Field(default=10, ge=1, le=100, description="Neighbours per document in the graph.")
    threshold: float = Field(
        default=0.75, ge=-1.0, le=1.0, description="Edges below this cosine are dropped."
    )
    min_size: int = Field(default=2, ge=1, description="Fewest documents in a reported cluster.")


class ClusterOut(BaseModel):
    """One cluster of documents."""

    id: int
    size: int
    members: list[str] = Field(description="Document ids.")
    representative: str | None = Field(
        description="The member closest to the cluster's mean direction."
    )


class ClustersOut(BaseModel):
    """Clusters, largest first."""

    method: str = Field(description="The method that ran.")
    clusters: list[ClusterOut]
    unclustered: int = Field(description="Documents in no cluster of min_size or more.")
    codelength: float | None = Field(
        description="InfoMap's description length of the partition, bits per step."
    )
    note: str | None = Field(default=None, description="Why another method ran.")


class DuplicatesRequest(_Body):
    """Paraphrase mining over a collection by kNN search (never all pairs)."""

    threshold: float = Field(default=0.9, ge=-1.0, le=1.0, description="Lowest cosine.")
    k: int = Field(default=10, ge=1, le=100, description="Neighbours searched per document.")
    limit: int = Field(default=1000, ge=1, le=100_000, description="Most pairs returned.")


class DuplicatePair(BaseModel):
    """Two documents and their cosine, in [-1, 1]."""

    a: str
    b: str
    score: float


class DuplicatesOut(BaseModel):
    """Duplicate pairs, highest cosine first."""

    pairs: list[DuplicatePair]
    total: int = Field(description="Pairs found (before limit).")


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


# --- health -------------------------------------------------------------------------------


class Health(BaseModel):
    """Component status. ``degraded`` (still HTTP 200, so a load balancer keeps sending reads
    and embeddings): collections are read-only or unavailable, or a write failed; ``reasons``
    says which and why."""

    status: Literal["ok", "degraded", "unavailable"]
    model: str
    store: str
    reasons: list[str] = Field(default_factory=list)
