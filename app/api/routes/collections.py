"""Collections, their documents, semantic search and whitening refits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from app.api.deps import ClusteringDep, CollectionsDep, DriftDep, SearchDep
from app.api.errors import report_truncation, responses
from app.api.schemas.analysis import (
    ClustersOut,
    ClustersRequest,
    CompareRequest,
    DuplicatesOut,
    DuplicatesRequest,
    GaussianDistancesOut,
)
from app.api.schemas.base import NAME_PATTERN
from app.api.schemas.collections import (
    BatchSearchResponse,
    CollectionCreate,
    CollectionInfo,
    CollectionList,
    DocumentOut,
    Hit,
    SearchRequest,
    SearchResponse,
    UpsertRequest,
    UpsertResponse,
    WhiteningRefit,
)
from app.services.collections import Document
from app.services.identifiers import DOCUMENT_ID_PATTERN
from app.services.search import Rerank, SearchHit
from app.services.transforms import WhiteningConfig

router = APIRouter(prefix="/collections", tags=["collections"])

Name = Annotated[str, Path(pattern=NAME_PATTERN, description="The collection's name.")]
#: Ids may hold '/', so the route takes the rest of the path.
DocId = Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN, description="The document's id.")]


def _links(status: int, **operations: dict[str, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI links from a response to the operations that take what it returns (so that
    clients and stateful fuzzers can chain them)."""
    links = {
        op: {"operationId": op, "parameters": parameters} for op, parameters in operations.items()
    }
    return {status: {"links": links}}


_NAME = {"name": "$response.body#/name"}
_DOCUMENT = {"name": "$request.path.name", "doc_id": "$response.body#/ids/0"}


def _hits(hits: list[SearchHit]) -> list[Hit]:
    return [
        Hit(
            id=h.id,
            text=h.text,
            score=h.score,
            metadata=h.metadata,
            vector_score=h.vector_score,
            distance=h.distance,
        )
        for h in hits
    ]


@router.post(
    "",
    status_code=201,
    response_model=CollectionInfo,
    response_model_exclude_none=True,
    operation_id="create_collection",
    responses={
        **responses(401, 404, 409, 422, 503, 507),
        **_links(
            201,
            get_collection=_NAME,
            upsert_documents=_NAME,
            search=_NAME,
            refit_whitening=_NAME,
            delete_collection=_NAME,
        ),
    },
)
def create_collection(body: CollectionCreate, service: CollectionsDep) -> dict[str, Any]:
    """Create an empty collection (``index``: one of the accepted index descriptions)."""
    whitening = None
    if body.whitening is not None:
        w = body.whitening
        whitening = WhiteningConfig(n_components=w.n_components, beta=w.beta, gamma=w.gamma)
    return service.create(body.name, body.index, whitening, body.transform)


@router.get(
    "",
    response_model=CollectionList,
    response_model_exclude_none=True,
    operation_id="list_collections",
    responses=responses(401),
)
def list_collections(service: CollectionsDep) -> dict[str, Any]:
    """All collections."""
    return {"collections": service.list_collections()}


@router.get(
    "/{name}",
    response_model=CollectionInfo,
    response_model_exclude_none=True,
    operation_id="get_collection",
    responses=responses(401, 404, 422),
)
async def get_collection(name: Name, service: CollectionsDep, drift: DriftDep) -> dict[str, Any]:
    """A collection's size, vector dimension, index and transform; with a whitening, how far
    its documents have moved from the whitening's fitting corpus (``whitening_drift``)."""
    info = service.info(name)
    if info["status"] != "unavailable":
        info["whitening_drift"] = await drift.whitening_drift(name)
    return info


@router.delete(
    "/{name}",
    status_code=204,
    operation_id="delete_collection",
    responses=responses(401, 404, 422, 503, 507),
)
def delete_collection(name: Name, service: CollectionsDep) -> Response:
    """Delete a collection and its files."""
    service.delete(name)
    return Response(status_code=204)


@router.post(
    "/{name}/documents",
    response_model=UpsertResponse,
    operation_id="upsert_documents",
    responses={
        **responses(400, 401, 404, 413, 422, 429, 503, 507),
        **_links(200, get_document=_DOCUMENT, delete_document=_DOCUMENT),
    },
)
async def upsert_documents(
    name: Name, body: UpsertRequest, service: CollectionsDep
) -> UpsertResponse:
    """Insert or replace documents; answered once they are committed to the store.

    A text over the model's limit is refused (413) unless ``truncate``: never cut silently."""
    documents = [Document(d.id or "", d.text, d.metadata) for d in body.documents]
    stored = await service.upsert(name, documents, truncate=body.truncate)
    return UpsertResponse(ids=stored.ids, truncated=stored.truncated)


@router.get(
    "/{name}/documents/{doc_id:path}",
    response_model=DocumentOut,
    operation_id="get_document",
    responses=responses(401, 404, 422, 503),
)
def get_document(name: Name, doc_id: DocId, service: CollectionsDep) -> DocumentOut:
    """A stored document."""
    doc = service.get_document(name, doc_id)
    return DocumentOut(id=doc.id, text=doc.text, metadata=doc.metadata)


@router.delete(
    "/{name}/documents/{doc_id:path}",
    status_code=204,
    operation_id="delete_document",
    responses=responses(401, 404, 422, 503, 507),
)
def delete_document(name: Name, doc_id: DocId, service: CollectionsDep) -> Response:
    """Delete a document."""
    service.delete_document(name, doc_id)
    return Response(status_code=204)


@router.post(
    "/{name}/search",
    response_model=SearchResponse | BatchSearchResponse,
    response_model_exclude_none=True,  # vector_score / distance only after a rerank
    operation_id="search",
    responses=responses(400, 401, 404, 413, 422, 429, 503),
)
async def search(
    name: Name,
    body: SearchRequest,
    service: SearchDep,
    response: Response,
) -> SearchResponse | BatchSearchResponse:
    """The ``top_k`` documents nearest in meaning, best first (``score``: cosine, higher is
    closer), optionally only those whose metadata equals ``filter``.

    A query over the model's limit is refused (413) unless ``truncate``."""
    single = body.query is not None
    queries = [body.query] if body.query is not None else (body.queries or [])
    rerank = None
    if body.rerank is not None:
        rerank = Rerank(method=body.rerank.method, candidates=body.rerank.candidates)
    found = await service.search(
        name,
        queries,
        body.top_k,
        body.filter,
        rerank,
        truncate=body.truncate,
        what="query" if single else "queries",
    )
    report_truncation(response, ["query" if single else f"queries[{i}]" for i in found.truncated])
    if single:
        return SearchResponse(hits=_hits(found.results[0]))
    return BatchSearchResponse(results=[_hits(r) for r in found.results])


@router.post(
    "/{name}/whitening",
    response_model=CollectionInfo,
    response_model_exclude_none=True,
    operation_id="refit_whitening",
    responses=responses(400, 401, 404, 409, 422, 503, 507),
)
async def refit_whitening(
    name: Name, service: CollectionsDep, drift: DriftDep, body: WhiteningRefit | None = None
) -> dict[str, Any]:
    """(Re)fit the collection's whitening on its own documents and rebuild its index (no
    re-encoding: the raw vectors are stored); answers as ``GET /collections/{name}``."""
    knobs = body or WhiteningRefit()
    info = await service.refit_whitening(
        name, n_components=knobs.n_components, beta=knobs.beta, gamma=knobs.gamma
    )
    info["whitening_drift"] = await drift.whitening_drift(name)
    return info


@router.post(
    "/{name}/compare",
    response_model=GaussianDistancesOut,
    operation_id="compare_collections",
    responses=responses(400, 401, 404, 409, 422, 503),
)
async def compare(name: Name, body: CompareRequest, service: DriftDep) -> dict[str, Any]:
    """How far this collection's documents are from another's: W2, KL and Bhattacharyya
    between Gaussians fitted to both in this collection's index space (409 when one is empty)."""
    return await service.compare(name, body.against)


@router.get(
    "/{name}/drift",
    response_model=GaussianDistancesOut,
    operation_id="query_drift",
    responses=responses(400, 401, 404, 409, 422, 503),
)
async def drift(name: Name, service: DriftDep) -> dict[str, Any]:
    """How far the collection's recent queries (the last SENTSIM_DRIFT_WINDOW) are from its
    documents, in its index space; also the ``sentsim_query_drift_w2`` gauge of /metrics
    (409 before 2 queries)."""
    return await service.drift(name)


@router.post(
    "/{name}/clusters",
    response_model=ClustersOut,
    operation_id="cluster_documents",
    responses=responses(400, 401, 404, 409, 422, 503),
)
async def clusters(
    name: Name, service: ClusteringDep, body: ClustersRequest | None = None
) -> dict[str, Any]:
    """Clusters of same-meaning documents: InfoMap (Rosvall & Bergstrom 2008) or threshold
    community detection on the collection's kNN graph from its own index (edge weight =
    cosine; edges below ``threshold`` dropped)."""
    knobs = body or ClustersRequest()
    return await service.clusters(
        name, method=knobs.method, k=knobs.k, threshold=knobs.threshold, min_size=knobs.min_size
    )


@router.post(
    "/{name}/duplicates",
    response_model=DuplicatesOut,
    operation_id="find_duplicates",
    responses=responses(400, 401, 404, 409, 422, 503),
)
async def duplicates(
    name: Name, service: ClusteringDep, body: DuplicatesRequest | None = None
) -> dict[str, Any]:
    """Pairs of documents with cosine >= ``threshold``, found among each document's ``k``
    nearest by its index (paraphrase mining without the n² pairs), highest first."""
    knobs = body or DuplicatesRequest()
    return await service.duplicates(name, threshold=knobs.threshold, k=knobs.k, limit=knobs.limit)
