"""``MilvusCollection``: one collection of the ``milvus`` backend (a ``VectorCollection``), in a
Milvus Lite file or on a Milvus server; ``MilvusCatalog`` (``milvus_catalog``) lists them.

Every collection is one "physical" Milvus collection (``app.index.milvus_physical``: one row
per document with its raw and prepared vectors). The registry (``app.index.milvus_registry``)
maps each name to its ``meta`` and its physical collection, so that any process connected to
the same Milvus sees the same collections. Reads and writes are at Strong consistency (a write
is seen by the next read, in any process).

Crash-safety without transactions: a replaced document's new row is written before its old
row is deleted (a crash in between leaves both; ``get`` then answers the newest); a refit
builds a new physical collection and switches the registry to it (the switch point), then
drops the old one.

Several replicas on one server (stateless API processes): the service re-reads a collection's
registry row on every access (``CollectionService``), so a create, refit or delete by another
replica is seen by the next request. What a refit could lose — a write another replica makes to
the old physical collection while it is copied — is caught up after the switch, and a write
that lands on the old collection after the catch-up is refused with ``ConflictError`` (409:
the client retries, and the retry reaches the new collection).

Metadata filters: ``app.index.milvus_filters`` (a Milvus expression, then an exact check of
each hit, searching deeper while too few remain).

Milvus Lite (``milvus-lite``) opens a file in one process only; ``milvus-lite server
--data-dir DIR --port P`` serves it to several (``uri="http://127.0.0.1:P"``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pymilvus import MilvusClient, MilvusException
from safetensors.numpy import save as save_tensors

from app.core.errors import ConflictError, NotFoundError, ServiceError
from app.core.types import Embeddings
from app.index.base import (
    CollectionBase,
    SearchHit,
    VectorTransform,
    knn_positions,
)
from app.index.milvus_filters import filter_expression, matches
from app.index.milvus_physical import (
    BATCH,
    MAX_LIMIT,
    NO_COLLECTION,
    catch_up,
    copy_rows,
    iter_rows,
    make_physical,
    physical_name,
    search_params,
    storage_error,
)
from app.index.milvus_registry import (
    drop_blob,
    lookup,
    register,
    save_blob,
    unregister,
)
from app.index.store import Document, Scalar
from app.transforms.whitening import Whitening

#: Documents whose neighbours one locked search finds (``MilvusCollection.neighbors``).
_NEIGHBOR_CHUNK = 1024


class MilvusCollection(CollectionBase):
    """One collection in Milvus (see the module's notes). Thread-safe within a process.

    ``app.index.milvus_catalog`` creates and opens them.

    Args:
        client: A connected ``MilvusClient`` (shared by the collections of a process).
        meta: As ``Collection``'s: ``name``, ``index``, ``dimension``, model, pooling...
        physical: The Milvus collection holding the documents.
        transform: Applied to raw vectors before L2 normalisation and indexing.
        writable: ``False``: every write raises ``ReadOnlyError``.
    """

    failures = (MilvusException,)

    def __init__(
        self,
        client: MilvusClient,
        meta: dict[str, Any],
        physical: str,
        transform: VectorTransform | None = None,
        *,
        writable: bool = True,
    ) -> None:
        super().__init__(meta, transform, writable=writable)
        self.client = client
        self.physical = physical

    def failure(self, what: str, exc: BaseException) -> ServiceError:
        """Milvus's code and message, and what to do; a physical collection gone means another
        replica deleted or refitted the collection meanwhile (``ConflictError``: retry)."""
        assert isinstance(exc, MilvusException)
        if exc.code == NO_COLLECTION:
            return ConflictError(
                f"{what} failed: collection {self.name!r} was deleted or refitted by another "
                "replica meanwhile; retry"
            )
        return storage_error(what, exc)

    def _check_current(self, what: str) -> None:
        """After a write: the registry must still point at the physical collection written,
        else another replica switched it meanwhile (a refit whose copy may have missed this
        write): ``ConflictError``, so that the client repeats the write (upserts and deletes
        are idempotent) and it reaches the new collection."""
        found = lookup(self.client, self.name)
        if found is None or found[0] != self.physical:
            raise ConflictError(
                f"{what}: collection {self.name!r} was deleted or refitted by another replica "
                "meanwhile, and this write may not have reached it; retry"
            )

    def count(self) -> int:
        """Number of documents."""
        with self.exclusive(f"reading collection {self.name!r}"):
            rows = self.client.query(self.physical, filter="", output_fields=["count(*)"])
            return int(rows[0]["count(*)"])

    def _rows_of(self, doc_ids: Sequence[str], fields: list[str]) -> list[dict[str, Any]]:
        if not doc_ids:
            return []
        expression = f"doc_id in [{', '.join(json.dumps(d) for d in doc_ids)}]"
        return list(self.client.query(self.physical, filter=expression, output_fields=fields))

    def get(self, doc_id: str) -> Document | None:
        """The document with this id (the newest row, should a crash have left two)."""
        with self.exclusive(f"reading collection {self.name!r}"):
            rows = self._rows_of([doc_id], ["seq", "doc_id", "text", "metadata"])
        if not rows:
            return None
        row = max(rows, key=lambda r: r["seq"])  # seqs of a replacement are drawn anew
        return Document(row["doc_id"], row["text"], dict(row["metadata"]), int(row["seq"]))

    def iter_raw_vectors(self, batch: int = BATCH) -> Iterator[Embeddings]:
        """The stored raw vectors, float32 (b, d) batches; call inside ``exclusive``."""
        for rows in iter_rows(self.client, self.physical, ["raw"], batch):
            yield np.array([r["raw"] for r in rows], dtype=np.float32)

    def upsert(self, documents: Sequence[Document], raw: Embeddings) -> list[str]:
        """Store documents with their raw float32 (n, d) vectors (replacing those with the
        same ids: the new rows are written before the old ones are deleted); return their ids.
        """
        vectors = self.prepare(raw)
        rows = [
            {
                "seq": secrets.randbits(63),
                "doc_id": d.id,
                "text": d.text,
                "metadata": d.metadata,
                "raw": np.asarray(r, dtype=np.float32).tolist(),
                "vector": v.tolist(),
            }
            for d, r, v in zip(documents, raw, vectors, strict=True)
        ]
        with self.exclusive(f"storing documents in collection {self.name!r}", write=True):
            old = [r["seq"] for r in self._rows_of([d.id for d in documents], ["seq"])]
            self.client.insert(self.physical, rows)
            if old:
                self.client.delete(self.physical, ids=old)
            self.generation += 1
            self._check_current(f"storing documents in collection {self.name!r}")
        return [d.id for d in documents]

    def delete(self, doc_id: str) -> None:
        """Delete a document.

        Raises:
            NotFoundError: No document has this id.
        """
        with self.exclusive(f"deleting a document of collection {self.name!r}", write=True):
            old = [r["seq"] for r in self._rows_of([doc_id], ["seq"])]
            if not old:
                raise NotFoundError(f"collection {self.name!r} has no document {doc_id!r}")
            self.client.delete(self.physical, ids=old)
            self.generation += 1
            self._check_current(f"deleting document {doc_id!r}")

    def search(
        self,
        raw_queries: Embeddings,
        top_k: int,
        filter: dict[str, Scalar] | None = None,
        check_size: Callable[[int], None] | None = None,
    ) -> list[list[SearchHit]]:
        """The ``top_k`` nearest documents of each raw query vector whose metadata equals
        ``filter``, best first (cosine in [-1, 1], higher is closer). ``check_size`` is
        called with the bytes the hits' text and metadata hold (read with the hits: Milvus
        returns them in the same answer) and may raise."""
        expression = filter_expression(filter)
        queries = self.prepare(raw_queries)
        with self.exclusive(f"searching collection {self.name!r}"):
            results = self._search_all(queries, top_k, expression, filter)
        if check_size is not None:
            size = sum(
                len(h.text.encode()) + len(json.dumps(h.metadata).encode()) + 64
                for hits in results
                for h in hits
            )
            check_size(size)
        return results

    def _search_all(
        self, queries: npt.NDArray[np.float32], top_k: int, expression: str, filter: Any
    ) -> list[list[SearchHit]]:
        """All queries in one Milvus search (one request instead of one per query: 500
        queries over 2,552 unsealed rows took 73 s one by one, 0.6 s together); a query whose
        hits the exact filter check thinned below ``top_k`` is searched again, deeper."""
        limit = min(top_k, MAX_LIMIT)
        answers = self._ask(queries.tolist(), limit, expression)
        results = []
        for query, answer in zip(queries, answers, strict=True):
            hits, asked = self._hits(answer, filter), limit
            while len(hits) < top_k and len(answer) >= asked and asked < MAX_LIMIT:
                asked = min(asked * 4, MAX_LIMIT)  # Milvus's prefilter let others through
                answer = self._ask([query.tolist()], asked, expression)[0]
                hits = self._hits(answer, filter)
            results.append(hits[:top_k])
        return results

    def _ask(self, data: list[list[float]], limit: int, expression: str) -> list[Any]:
        return list(
            self.client.search(
                self.physical,
                data=data,
                anns_field="vector",
                limit=limit,
                filter=expression,
                output_fields=["doc_id", "text", "metadata"],
                search_params=search_params(self.meta["index"], len(data[0]), limit),
            )
        )

    @staticmethod
    def _hits(answer: Any, filter: Any) -> list[SearchHit]:
        return [
            SearchHit(
                h["entity"]["doc_id"],
                h["entity"]["text"],
                float(h["distance"]),
                dict(h["entity"]["metadata"]),
                int(h["seq"]),
            )
            for h in answer
            if matches(h["entity"]["metadata"], filter)
        ]

    def ids_of(self, seqs: Sequence[int] | npt.NDArray[np.int64]) -> dict[int, str]:
        """Document ids by seq (documents gone are left out)."""
        wanted = [int(s) for s in seqs]
        if not wanted:
            return {}
        with self.exclusive(f"reading collection {self.name!r}"):
            rows = self.client.query(
                self.physical, filter=f"seq in {wanted}", output_fields=["seq", "doc_id"]
            )
        return {int(r["seq"]): r["doc_id"] for r in rows}

    def neighbors(
        self, k: int
    ) -> tuple[npt.NDArray[np.int64], Embeddings, npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Every document's ``k`` nearest other documents, by this collection's index: see
        ``VectorCollection.neighbors``.

        Raises:
            ConflictError: Its transform was refitted meanwhile.
        """
        with self.exclusive(f"reading collection {self.name!r}"):
            parts = list(iter_rows(self.client, self.physical, ["raw"]))
            transform, physical = self.transform, self.physical
        rows = [r for part in parts for r in part]
        if not rows:
            none = np.zeros((0, k), np.int64)
            vectors = np.zeros((0, self.vector_dimension), np.float32)
            return np.zeros(0, np.int64), vectors, none, none.astype(np.float32)
        seqs = np.array([r["seq"] for r in rows], dtype=np.int64)
        vectors = self.prepare(np.array([r["raw"] for r in rows], dtype=np.float32))
        limit = min(k + 1, MAX_LIMIT)
        chunks = []
        for start in range(0, len(seqs), _NEIGHBOR_CHUNK):
            with self.exclusive(f"searching collection {self.name!r}"):
                if self.transform is not transform or self.physical != physical:
                    raise ConflictError(
                        f"collection {self.name!r} was refitted meanwhile; ask again"
                    )
                answers = self.client.search(
                    physical,
                    data=vectors[start : start + _NEIGHBOR_CHUNK].tolist(),
                    anns_field="vector",
                    limit=limit,
                    search_params=search_params(self.meta["index"], vectors.shape[1], limit),
                )
            scores = np.full((len(answers), limit), -np.inf, dtype=np.float32)
            found = np.full((len(answers), limit), -1, dtype=np.int64)
            for i, answer in enumerate(answers):
                for j, hit in enumerate(answer):
                    scores[i, j], found[i, j] = hit["distance"], hit["seq"]
            chunks.append((scores, found))
        found_positions, scores = knn_positions(seqs, chunks, k)
        return seqs, vectors, found_positions, scores

    def retransform(self, whitening: Whitening, meta: dict[str, Any]) -> None:
        """Switch to a newly fitted whitening, crash-safely and without losing the writes of
        other replicas:

        1. a new physical collection gets every document with its vector prepared anew, and
           the whitening's tensors are saved as a blob it owns (a failure drops both: the old
           whitening stays in force);
        2. the registry is switched to it (the switch point; replicas see it on their next
           access);
        3. catch-up: what other replicas wrote to the old collection before they saw the switch
           is copied over (and what they deleted, deleted); a write that lands after this is
           refused to its client by ``_check_current``, which then retries;
        4. the old collection and its blob are dropped.

        Raises:
            NotFoundError: The collection was deleted.
            StorageError: Milvus refused; before the switch nothing changed.
        """
        with self.exclusive(f"refitting the whitening of collection {self.name!r}", write=True):
            old, physical = self.physical, physical_name(self.name)
            make_physical(
                self.client,
                physical,
                int(self.meta["dimension"]),
                whitening.n_components,
                self.meta["index"],
            )
            try:
                save_blob(self.client, physical, save_tensors(whitening.tensors()))
                copy_rows(self.client, old, physical, whitening)
                merged = {
                    **self.meta,
                    **meta,
                    "whitening_blob": physical,
                    "whitening_metadata": whitening.metadata,
                }
                register(self.client, self.name, physical, merged)
            except BaseException:
                self.client.drop_collection(physical)
                drop_blob(self.client, physical)
                raise
            self.physical, self.transform, self.meta = physical, whitening, merged
            catch_up(self.client, old, physical, whitening)
            self.client.drop_collection(old)
            drop_blob(self.client, old)

    def checkpoint(self) -> None:
        """Seal what was written (Milvus ``flush``): Milvus Lite searches unsealed rows by
        brute force (about 160 ms a query at 3,000 documents, against 10 ms once sealed)."""
        with self.exclusive(f"sealing collection {self.name!r}"):
            self.client.flush(self.physical)

    def close(self) -> None:
        """Later calls raise ``NotFoundError`` (the client stays open for the others)."""
        with self.lock:
            self.closed = True

    def destroy(self) -> None:
        """Unregister the collection (the switch point), then drop its documents."""
        with self.exclusive(f"deleting collection {self.name!r}", write=True):
            unregister(self.client, self.name)
            self.closed = True
            self.client.drop_collection(self.physical)
            drop_blob(self.client, self.physical)
