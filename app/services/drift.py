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
import time
from collections import deque
from dataclasses import asdict
from typing import Any

import numpy as np

from app.core.errors import ConflictError, DimensionMismatchError
from app.core.types import Embeddings
from app.index.base import VectorCollection
from app.services.collections import CollectionService
from app.services.metrics import Metrics
from app.similarity.gaussian import Gaussian, gaussian_distances, wasserstein2
from app.transforms.whitening import Whitening


class DriftService:
    """Gaussian distances between collections, and between a collection's recent queries and
    its documents.

    Args:
        collections: The collections.
        window: Queries kept per collection (the most recent), >= 2.
        metrics: Where ``sentsim_query_drift_w2{collection}`` is set on each drift reading.
        whitening_threshold: ``whitening_drift`` says ``drifted`` above this relative W2.
        whitening_refresh_s: A whitening-drift reading is reused this long while the
            collection keeps changing.
    """

    def __init__(
        self,
        collections: CollectionService,
        window: int = 1000,
        metrics: Metrics | None = None,
        *,
        whitening_threshold: float = 0.5,
        whitening_refresh_s: float = 60.0,
    ) -> None:
        self.collections = collections
        self.window = max(window, 2)
        self.metrics = metrics
        self.whitening_threshold = whitening_threshold
        self.whitening_refresh_s = whitening_refresh_s
        #: Per collection uid: ((generation, transform id), monotonic time, reading).
        self._whitening: dict[str, tuple[tuple[int, int], float, dict[str, Any]]] = {}
        #: Per open collection instance (by uid): the instance and its recent raw queries.
        self._queries: dict[str, tuple[VectorCollection, deque[np.ndarray]]] = {}
        self._lock = threading.Lock()

    def record(self, collection: VectorCollection, raw: Embeddings) -> None:
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

    async def whitening_drift(self, name: str) -> dict[str, Any] | None:
        """How far a whitened collection's documents have moved from the corpus its whitening
        was fitted on (``None`` when it has no whitening or no documents).

        W2 between the Gaussian of the stored raw vectors and the whitening's own (its fitted
        mean and covariance: ``mean``, ``components`` diag(``eigenvalues``) ``components``ᵀ),
        relative to that corpus's spread sqrt(tr Σ). DESIGN.md §6: when to refit. Taken once
        per change of the collection, at most every ``whitening_refresh_s`` while it keeps
        changing (a reading streams every stored vector). Fewer documents than dimensions
        give a biased (too high) W2, so ``drifted`` is ``None`` then.

        Returns:
            ``{"w2", "relative", "threshold", "drifted", "n", "reference_n"}``.

        Raises:
            NotFoundError: The collection does not exist.
        """
        collection = self.collections.get(name)
        whitening = collection.transform
        if not isinstance(whitening, Whitening) or collection.count() == 0:
            return None
        key = (collection.generation, id(whitening))
        now = time.monotonic()
        with self._lock:
            cached = self._whitening.get(collection.uid)
        if cached is not None and (
            cached[0] == key
            or (cached[0][1] == key[1] and now - cached[1] < self.whitening_refresh_s)
        ):
            return cached[2]
        reading = await asyncio.to_thread(_whitening_drift, collection, whitening)
        reading["threshold"] = self.whitening_threshold
        relative = reading["relative"]
        enough = reading["n"] >= whitening.dimension
        reading["drifted"] = bool(relative > self.whitening_threshold) if enough else None
        with self._lock:
            self._whitening[collection.uid] = (key, now, reading)
        return reading


def _whitening_drift(collection: VectorCollection, whitening: Whitening) -> dict[str, Any]:
    assert whitening.mean is not None and whitening.components is not None
    assert whitening.eigenvalues is not None
    components = whitening.components.astype(np.float64)
    cov = (components * whitening.eigenvalues) @ components.T
    fitted = Gaussian(whitening.mean.astype(np.float64), cov, whitening.n_fitted)
    with collection.exclusive(f"reading collection {collection.name!r}"):  # 404 once deleted
        documents = Gaussian.fit_chunks(collection.iter_raw_vectors())
    w2 = wasserstein2(documents, fitted)
    spread = float(np.sqrt(max(np.trace(cov), 1e-30)))
    return {"w2": w2, "relative": w2 / spread, "n": documents.n, "reference_n": fitted.n}


def _documents(collection: VectorCollection, space: VectorCollection) -> Gaussian:
    """The Gaussian of a collection's documents in ``space``'s index space (its transform and
    L2 norm over the stored raw vectors), streamed from the store."""
    if collection.count() == 0:
        raise ConflictError(f"collection {collection.name!r} has no documents")
    with collection.exclusive(f"reading collection {collection.name!r}"):  # 404 once deleted
        chunks = (space.prepare(raw) for raw in collection.iter_raw_vectors())
        return Gaussian.fit_chunks(chunks)


def _distances(first: Gaussian, second: Gaussian, what: str) -> dict[str, Any]:
    if first.dimension != second.dimension:
        raise DimensionMismatchError(
            f"{what} live in index spaces of different dimensions "
            f"({first.dimension} vs {second.dimension})"
        )
    return {**asdict(gaussian_distances(first, second)), "n": first.n, "reference_n": second.n}
