"""Compare collections, and watch a collection's queries drift from its documents, by the
distances between Gaussians fitted to their vectors (``app.similarity.gaussian``).

Both sides are taken in the space the (first) collection's index uses (its transform, then L2
normalisation, over the stored raw vectors), so a whitened collection is compared as it
searches. A collection's recent
queries are kept in a bounded window of raw vectors per collection instance; they are put in
the index space when asked, by the transform the collection has then.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import asdict
from typing import Any

import numpy as np

from app.core.errors import ConflictError, DimensionMismatchError
from app.core.types import Embeddings
from app.index.collection import Collection
from app.services.collections import CollectionService
from app.services.metrics import Metrics
from app.similarity.gaussian import Gaussian, gaussian_distances


class DriftService:
    """Gaussian distances between collections, and between a collection's recent queries and
    its documents.

    Args:
        collections: The collections.
        window: Queries kept per collection (the most recent), >= 2.
        metrics: Where ``sentsim_query_drift_w2{collection}`` is set on each drift reading.
    """

    def __init__(
        self, collections: CollectionService, window: int = 1000, metrics: Metrics | None = None
    ) -> None:
        self.collections = collections
        self.window = max(window, 2)
        self.metrics = metrics
        #: Per open collection instance (by uid): the instance and its recent raw queries.
        self._queries: dict[str, tuple[Collection, deque[np.ndarray]]] = {}
        self._lock = threading.Lock()

    def record(self, collection: Collection, raw: Embeddings) -> None:
        """Keep a search's raw query vectors, float32 (n, d), in the collection's window (the
        windows of deleted collections are dropped here)."""
        with self._lock:
            for uid in [u for u, (c, _) in self._queries.items() if c.closed]:
                del self._queries[uid]
            _, window = self._queries.setdefault(
                collection.uid, (collection, deque(maxlen=self.window))
            )
            window.extend(np.array(raw, dtype=np.float32, copy=True))

    async def compare(self, name: str, against: str) -> dict[str, Any]:
        """Distances from collection ``name``'s documents to collection ``against``'s, both in
        ``name``'s index space (its transform applied to both sides' raw vectors).

        Returns:
            ``{"w2", "kl", "bhattacharyya", "ridge", "n", "reference_n"}``: W2 (>= 0, in the
            index space's units), KL(name ‖ against) in nats, Bhattacharyya (symmetric), the
            ridge added for the last two, and how many documents each side has. 0: the same
            distribution; larger: further apart.

        Raises:
            NotFoundError: Either collection does not exist.
            ConflictError: A collection has no documents.
            DimensionMismatchError: Their index spaces differ in dimension.
        """
        first, second = self.collections.get(name), self.collections.get(against)
        mine = await asyncio.to_thread(_documents, first, first)
        theirs = await asyncio.to_thread(_documents, second, first)
        return _distances(mine, theirs, f"{name!r} and {against!r}")

    async def drift(self, name: str) -> dict[str, Any]:
        """Distances from collection ``name``'s recent queries (its window) to its documents;
        also set as the ``sentsim_query_drift_w2`` gauge.

        Returns:
            As ``compare``, with ``n`` the queries in the window and ``reference_n`` the
            documents; KL is KL(queries ‖ documents).

        Raises:
            NotFoundError: The collection does not exist.
            ConflictError: Fewer than 2 queries searched it since it was opened, or it has no
                documents.
        """
        collection = self.collections.get(name)
        with self._lock:
            recent = list(self._queries.get(collection.uid, (collection, ()))[1])
        if len(recent) < 2:
            raise ConflictError(
                f"collection {name!r} has {len(recent)} recent queries; drift needs at least 2 "
                "(search it first)"
            )
        queries = await asyncio.to_thread(
            lambda: Gaussian.fit(collection.prepare(np.stack(recent)))
        )
        documents = await asyncio.to_thread(_documents, collection, collection)
        result = _distances(queries, documents, f"{name!r}'s queries and documents")
        if self.metrics is not None:
            self.metrics.query_drift_w2.labels(collection=name).set(result["w2"])
        return result


def _documents(collection: Collection, space: Collection) -> Gaussian:
    """The Gaussian of a collection's documents in ``space``'s index space (its transform and
    L2 norm over the stored raw vectors), streamed from the store."""
    if collection.count() == 0:
        raise ConflictError(f"collection {collection.name!r} has no documents")
    chunks = (space.prepare(raw) for _, raw in collection.store.iter_vectors())
    return Gaussian.fit_chunks(chunks)


def _distances(first: Gaussian, second: Gaussian, what: str) -> dict[str, Any]:
    if first.dimension != second.dimension:
        raise DimensionMismatchError(
            f"{what} live in index spaces of different dimensions "
            f"({first.dimension} vs {second.dimension})"
        )
    return {**asdict(gaussian_distances(first, second)), "n": first.n, "reference_n": second.n}
