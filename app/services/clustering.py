"""Clusters and duplicate pairs of a collection's documents, from the kNN graph its own FAISS
index gives (``VectorCollection.neighbors``; ``app.similarity.clustering`` for the methods)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from app.core.errors import InputValidationError
from app.index.base import VectorCollection
from app.services.collections import CollectionService
from app.similarity.clustering import (
    INFOMAP_HINT,
    Clustering,
    duplicate_pairs,
    infomap_available,
    infomap_clusters,
    threshold_clusters,
)

logger = logging.getLogger(__name__)

CLUSTER_METHODS = ("infomap", "threshold")


class ClusterService:
    """``clusters`` and ``duplicates`` of a collection.

    Each call searches every document's ``k`` nearest neighbours in the collection's index
    (exact for ``flat``, approximate for HNSW/IVF; 100k documents on 2 cores: ~50 s flat,
    ~20 s HNSW), then works on that graph in a worker thread. One graph is built at a time
    (others wait their turn), so concurrent requests cannot multiply that load.

    Args:
        collections: The collections.
        max_k: Largest ``k`` a request may ask for.
    """

    def __init__(self, collections: CollectionService, max_k: int = 100) -> None:
        self.collections = collections
        self.max_k = max_k
        self._one_at_a_time = asyncio.Semaphore(1)

    async def _graph(
        self, name: str, k: int
    ) -> tuple[VectorCollection, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The collection and its kNN graph (``neighbors``), one build at a time."""
        collection = self.collections.get(name)
        async with self._one_at_a_time:
            return collection, await asyncio.to_thread(collection.neighbors, k)

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= self.max_k:
            raise InputValidationError(f"k={k}; neighbours per document must be in 1..{self.max_k}")

    async def clusters(
        self,
        name: str,
        *,
        method: str = "infomap",
        k: int = 10,
        threshold: float = 0.75,
        min_size: int = 2,
    ) -> dict[str, Any]:
        """Clusters of same-meaning documents.

        Args:
            method: ``infomap`` (the map equation; falls back to ``threshold``, saying so,
                when the optional ``infomap`` package is missing) or ``threshold``
                (sentence-transformers' community detection).
            k: Neighbours per document in the graph.
            threshold: Edges below this cosine are dropped, in [-1, 1].
            min_size: Fewest documents in a reported cluster.

        Returns:
            ``{"method", "clusters": [{"id", "size", "members": [doc ids], "representative"}],
            "unclustered", "codelength", "note"}``, largest cluster first; ``codelength`` in
            bits (InfoMap, else ``None``); ``note`` says why another method ran (or ``None``).

        Raises:
            NotFoundError: No such collection (or deleted meanwhile).
            ConflictError: Its whitening was refitted meanwhile.
            InputValidationError: Unknown method, ``k`` out of range.
        """
        if method not in CLUSTER_METHODS:
            raise InputValidationError(
                f"unknown method {method!r}; choose one of {', '.join(CLUSTER_METHODS)}"
            )
        self._check_k(k)
        note = None
        if method == "infomap" and not infomap_available():
            note = f"infomap is not installed, so threshold clustering ran; {INFOMAP_HINT}"
            logger.warning(note)
            method = "threshold"
        collection, (seqs, vectors, neighbors, scores) = await self._graph(name, k)
        run = infomap_clusters if method == "infomap" else threshold_clusters
        result: Clustering = await asyncio.to_thread(
            lambda: run(neighbors, scores, vectors, threshold=threshold, min_size=min_size)
        )
        members = np.concatenate(result.clusters) if result.clusters else np.zeros(0, np.int64)
        ids = await asyncio.to_thread(collection.ids_of, seqs[members])
        clusters = [
            {
                "id": i,
                "size": len(c),
                "members": [ids[int(s)] for s in seqs[c] if int(s) in ids],
                "representative": ids.get(int(seqs[r])),
            }
            for i, (c, r) in enumerate(zip(result.clusters, result.representatives, strict=True))
        ]
        return {
            "method": method,
            "clusters": clusters,
            "unclustered": result.unclustered,
            "codelength": result.codelength,
            "note": note,
        }

    async def duplicates(
        self, name: str, *, threshold: float = 0.9, k: int = 10, limit: int = 1000
    ) -> dict[str, Any]:
        """Pairs of documents with cosine >= ``threshold`` among each one's ``k`` nearest
        (paraphrase mining without the n² pairs), highest first.

        Returns:
            ``{"pairs": [{"a", "b", "score"}], "total"}``: at most ``limit`` pairs (doc ids,
            cosine in [-1, 1]), and how many were found.

        Raises:
            NotFoundError: No such collection (or deleted meanwhile).
            ConflictError: Its whitening was refitted meanwhile.
            InputValidationError: ``k`` out of range.
        """
        self._check_k(k)
        collection, (seqs, _, neighbors, scores) = await self._graph(name, k)
        pairs, pair_scores = duplicate_pairs(neighbors, scores, threshold=threshold)
        kept = pairs[:limit]
        ids = await asyncio.to_thread(collection.ids_of, np.unique(seqs[kept]))
        rows = [
            {"a": ids[int(seqs[a])], "b": ids[int(seqs[b])], "score": float(score)}
            for (a, b), score in zip(kept, pair_scores[:limit], strict=True)
            if int(seqs[a]) in ids and int(seqs[b]) in ids
        ]
        return {"pairs": rows, "total": len(pairs)}
