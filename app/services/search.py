"""Semantic search over collections, optionally reranked by WMD / WRD over token vectors.

The first stage is the collection's FAISS index (cosine of corrected, L2-normalised vectors);
the optional second stage reorders its candidates by optimal transport between the query's and
each document's token vectors (Kusner et al. 2015, WMD; Yokoi et al. 2020, WRD), with the
documents' token vectors kept in a bounded LRU cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from app.core.errors import BatchTooLargeError
from app.core.types import Embeddings
from app.index.base import SearchHit as SearchHit  # re-exported for the API
from app.index.base import VectorCollection
from app.index.store import Scalar
from app.services.collections import CollectionService
from app.services.inference import InferenceGateway
from app.services.limits import Limits
from app.services.transport import TokenCache, check_transport_method
from app.similarity.ot import TransportMethod, distance_to_score, top_k_transport


@dataclass(frozen=True)
class Rerank:
    """Second-stage reranking of search hits by optimal transport over token vectors.

    Attributes:
        method: ``wrd`` or ``wmd``.
        candidates: How many first-stage (vector search) hits to rerank.
    """

    method: str = "wrd"
    candidates: int = 50


@dataclass(frozen=True)
class Searched:
    """What a search found.

    Attributes:
        results: Per query, its hits, best first.
        truncated: Indices of the queries searched by their beginning (over the model's limit).
    """

    results: list[list[SearchHit]]
    truncated: list[int]


class SearchService:
    """Searches the collections of a ``CollectionService``.

    Args:
        collections: The collections.
        inference: Encodes queries (and, for reranking, token vectors) and applies the
            truncation policy.
        limits: Request limits (queries, ``top_k``, filter keys, candidates, response bytes).
        token_cache: Cache of documents' token vectors, keyed by the open collection instance
            and the document's seq (default: none).
        on_queries: Told each search's collection and raw query vectors (``DriftService``).
    """

    def __init__(
        self,
        collections: CollectionService,
        inference: InferenceGateway,
        limits: Limits,
        token_cache: TokenCache | None = None,
        on_queries: Callable[[VectorCollection, Embeddings], None] | None = None,
    ) -> None:
        self.collections = collections
        self.inference = inference
        self.limits = limits
        self.token_cache = token_cache or TokenCache(0)
        self.on_queries = on_queries

    async def search(
        self,
        name: str,
        queries: Sequence[str],
        top_k: int = 10,
        filter: dict[str, Scalar] | None = None,
        rerank: Rerank | None = None,
        *,
        truncate: bool = False,
        what: str = "queries",
    ) -> Searched:
        """Semantic search: the ``top_k`` documents nearest each query, best first.

        With ``rerank``, the first stage fetches ``rerank.candidates`` hits by vector search
        and the second reorders them by WRD / WMD over token vectors (pruned exact transport),
        each hit keeping its first-stage ``vector_score``. A query over the model's limit is
        refused unless ``truncate``; then its beginning is searched and the result says so.

        Args:
            what: What the queries are called in error messages (``query``, ``queries``).

        Raises:
            NotFoundError, BatchTooLargeError, EmptyInputError, InputValidationError.
        """
        collection = self.collections.get(name)
        self.limits.check_sentences(queries, what)
        self.limits.check_filter(filter)
        if not 1 <= top_k <= self.limits.max_top_k:
            raise BatchTooLargeError(
                f"top_k={top_k}; it must be in [1, {self.limits.max_top_k}] (SENTSIM_MAX_TOP_K)"
            )
        first_k, method = top_k, None
        if rerank is not None:
            method = check_transport_method(rerank.method)
            if not 1 <= rerank.candidates <= self.limits.max_rerank_candidates:
                raise BatchTooLargeError(
                    f"rerank.candidates={rerank.candidates}; it must be in "
                    f"[1, {self.limits.max_rerank_candidates}] (SENTSIM_MAX_RERANK_CANDIDATES)"
                )
            first_k = max(top_k, rerank.candidates)
        # With a rerank, the queries' sentence and token vectors come from one forward pass.
        inferred = await self.inference.embed_pooled(
            queries, truncate=truncate, token_embeddings=method is not None, what=what
        )
        if self.on_queries is not None:
            self.on_queries(collection, inferred.embeddings)
        hits = await asyncio.to_thread(
            collection.search,
            inferred.embeddings,
            first_k,
            filter,
            self.limits.check_response_bytes,
        )
        if method is not None:
            assert inferred.token_embeddings is not None
            hits = await self._rerank(
                collection.uid, inferred.token_embeddings, hits, top_k, method
            )
        return Searched(hits, inferred.truncated)

    async def _rerank(
        self,
        uid: str,
        queries: list[np.ndarray],
        hits: list[list[SearchHit]],
        top_k: int,
        method: TransportMethod,
    ) -> list[list[SearchHit]]:
        """Reorder each query's hits by transport between ``queries`` (its token vectors,
        float32 (n_tokens, d)) and the documents' token vectors (cached, else encoded)."""
        tokens: dict[int, np.ndarray] = {}
        for h in (h for row in hits for h in row):
            cached = self.token_cache.get((uid, h.seq))
            if cached is not None:
                tokens[h.seq] = cached
        missing = {h.seq: h.text for row in hits for h in row if h.seq not in tokens}
        if missing:  # stored documents: their cut was reported when they were upserted
            encoded = await self.inference.embed_pooled(
                list(missing.values()), truncate=True, token_embeddings=True, what="documents"
            )
            assert encoded.token_embeddings is not None
            for seq, vectors in zip(missing, encoded.token_embeddings, strict=True):
                tokens[seq] = vectors
                self.token_cache.put((uid, seq), vectors)

        def rank() -> list[list[SearchHit]]:
            out = []
            for query_tokens, row in zip(queries, hits, strict=True):
                best = top_k_transport(query_tokens, [tokens[h.seq] for h in row], top_k, method)
                out.append(
                    [
                        replace(
                            row[i],
                            score=distance_to_score(d, method),
                            vector_score=row[i].score,
                            distance=d,
                        )
                        for i, d in best
                    ]
                )
            return out

        return await asyncio.to_thread(rank)
