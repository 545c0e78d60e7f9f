"""Collection: one collection's document store and FAISS index, kept in step (the aggregate).

A collection is a folder under the indexes directory:

- ``store.sqlite``: documents, metadata and raw encoder vectors — the source of truth;
- ``index.faiss``: a FAISS ``IndexIDMap2`` of the prepared (transformed, L2-normalised)
  vectors — a cache, saved by atomic replace and reconciled with the store on opening (stale
  ids removed, missing ones added from the stored raw vectors, no re-encoding).

No failure leaves a half-made or half-deleted collection behind (``app.index.folders``: staged
creates, deletes through the trash); every operation checks, under the collection's lock, that
it has not been closed meanwhile (a request racing a delete gets ``NotFoundError``). Storage
failures become ``StorageError`` whose message names no file path.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.errors import ConflictError, NotFoundError, StorageError, storage_error
from app.core.files import fsync_dir
from app.core.types import Embeddings
from app.index.base import (
    CollectionBase,
    SearchHit,
    VectorTransform,
    index_dimension,
    knn_positions,
    prepare_vectors,
)
from app.index.faiss_index import FaissIndex, parse_spec
from app.index.folders import create_atomically, empty_trash, move_to_trash
from app.index.store import Document, DocumentStore, Scalar
from app.transforms.whitening import Whitening

logger = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
STORE_FILE = "store.sqlite"
#: Folder prefix of a collection's own whitening (``whitening-<id>/``; before: ``whitening/``).
WHITENING_DIR = "whitening"
#: Bytes counted per search hit on top of its text and metadata (id, score, JSON syntax).
HIT_OVERHEAD_BYTES = 64
#: Documents whose neighbours one locked index search finds (``Collection.neighbors``).
_NEIGHBOR_CHUNK = 4096


class Collection(CollectionBase):
    """One collection: its store, its index and its optional transform. Thread-safe.

    ``Collection.create`` makes a new one; ``FolderCatalog.open`` opens one (then
    ``reconcile``).

    Args:
        folder: The collection's folder.
        store: Its open store.
        transform: Applied to raw vectors before L2 normalisation and indexing; ``None``: none.
        writable: ``False`` when the indexes folder cannot be written: every write raises
            ``ReadOnlyError``, searches work.

    Raises:
        InputValidationError: The stored index description is not accepted (``parse_spec``).
    """

    failures = (OSError, sqlite3.Error)
    read_only_reason = (
        "the indexes folder (SENTSIM_INDEXES_DIR) was not writable when the server started; "
        "make it writable and restart"
    )

    def __init__(
        self,
        folder: Path,
        store: DocumentStore,
        transform: VectorTransform | None = None,
        *,
        writable: bool = True,
    ) -> None:
        super().__init__(store.get_meta(), transform, writable=writable)
        self.folder = folder
        self.store = store
        self.stale = 0  # ids in the index whose document is gone (index types without remove)
        #: Why the index file could not be saved last time (``None``: it was).
        self.fault: str | None = None
        self.spec = parse_spec(self.meta["index"], self.vector_dimension)
        empty = np.zeros((0, self.vector_dimension), np.float32)
        self.index = FaissIndex.build(
            self.vector_dimension, self.meta["index"], np.zeros(0, np.int64), empty
        )

    @classmethod
    def create(
        cls,
        root: Path,
        meta: dict[str, Any],
        transform: VectorTransform | None = None,
    ) -> Collection:
        """Create ``root/meta["name"]`` with its store and an empty index, all or nothing.

        Args:
            root: The indexes folder.
            meta: ``name``, ``index``, ``dimension`` (the encoder's d) and whatever else the
                caller records (model, pooling...), stored in the store's ``meta`` table.
            transform: As in the constructor.

        Raises:
            InputValidationError: The index description is not accepted.
            StorageError: The folder could not be written (nothing is left behind).
        """
        d = index_dimension(meta, transform)
        parse_spec(meta["index"], d)
        name = str(meta["name"])

        def fill(staging: Path) -> None:
            store = DocumentStore(staging / STORE_FILE)
            try:
                store.set_meta(**meta)
                empty = np.zeros((0, d), np.float32)
                index = FaissIndex.build(d, meta["index"], np.zeros(0, np.int64), empty)
                index.save(staging / INDEX_FILE)
            finally:
                store.close()

        try:
            create_atomically(root, name, fill)
        except (OSError, sqlite3.Error) as exc:
            raise storage_error(f"creating collection {name!r}", exc) from None
        return cls(root / name, DocumentStore(root / name / STORE_FILE), transform)

    def failure(self, what: str, exc: BaseException) -> StorageError:
        """``storage_error``: the cause named without any file path."""
        return storage_error(what, exc)

    def count(self) -> int:
        """Number of documents. Raises ``NotFoundError`` once deleted."""
        with self.exclusive(f"reading collection {self.name!r}"):
            return self.store.count()

    def get(self, doc_id: str) -> Document | None:
        """The document with this id, or ``None``. Raises ``NotFoundError`` once deleted."""
        with self.exclusive(f"reading collection {self.name!r}"):
            return self.store.get(doc_id)

    def iter_raw_vectors(self, batch: int = 8192) -> Iterator[Embeddings]:
        """The stored raw encoder vectors, float32 (b, d) batches in document order. Call it
        inside ``exclusive`` (a generator must not hold the lock between its batches)."""
        yield from (raw for _, raw in self.store.iter_vectors(batch))

    def reconcile(self) -> None:
        """Make the index hold exactly the store's documents, saving it if it changed."""
        with self.lock:
            loaded = FaissIndex.load(
                self.folder / INDEX_FILE, self.vector_dimension, self.meta["index"]
            )
            if loaded is None:
                logger.info("collection %s: index missing or unreadable, rebuilding", self.name)
                self.rebuild()
                return
            self.index = loaded
            seqs, indexed = self.store.seqs(), self.index.ids()
            stale = np.setdiff1d(indexed, seqs)
            missing = np.setdiff1d(seqs, indexed)
            if len(stale) and not self.index.remove(stale):
                self.stale = len(stale)
            for batch_seqs, raw in self.store.iter_vectors(seqs=missing):
                self.index.add(batch_seqs, self.prepare(raw))
            if len(stale) or len(missing):
                logger.info(
                    "collection %s: index reconciled (%d stale, %d added)",
                    self.name,
                    len(stale),
                    len(missing),
                )
                self.checkpoint()
            elif self.index.exact_fallback and len(seqs) >= self.spec.min_train:
                self.rebuild()

    def _build(self, transform: VectorTransform | None) -> FaissIndex:
        """An index of every stored vector prepared with ``transform``, trained if need be."""
        d = index_dimension(self.meta, transform)
        parts = [(s, prepare_vectors(v, transform)) for s, v in self.store.iter_vectors()]
        seqs = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        vectors = np.vstack([p[1] for p in parts]) if parts else np.zeros((0, d), np.float32)
        return FaissIndex.build(d, self.meta["index"], seqs, vectors)

    def rebuild(self) -> None:
        """Build the index afresh from every stored vector (training it if it needs it)."""
        with self.lock:
            self.index = self._build(self.transform)
            self.stale = 0
            self.checkpoint()

    def checkpoint(self) -> None:
        """Save the index (atomic replace). A failure is logged and kept in ``fault``, not
        raised: the index is a cache of committed data, rebuilt from the store if need be."""
        with self.lock:
            if not self.writable or self.closed:
                return
            try:
                self.index.save(self.folder / INDEX_FILE)
            except OSError as exc:
                self.fault = str(storage_error(f"saving the index of {self.name!r}", exc))
                logger.warning("collection %s: %s", self.name, self.fault)
            else:
                self.fault = None

    def upsert(self, documents: Sequence[Document], raw: Embeddings) -> list[str]:
        """Store documents with their raw float32 (n, d) vectors (committed first), then index
        them; return their ids.

        Raises:
            NotFoundError: The collection was deleted.
            StorageError: The store could not be written; nothing was stored.
        """
        with self.exclusive(f"storing documents in collection {self.name!r}", write=True):
            seqs, replaced = self.store.upsert(documents, raw)
            self.generation += 1
            if replaced and not self.index.remove(np.array(replaced, np.int64)):
                self.stale += len(replaced)
            waiting = self.index.exact_fallback and self.store.count() >= self.spec.min_train
            if waiting or self.stale > max(1000, self.index.ntotal // 5):
                self.rebuild()  # train a waiting IVF index, or drop many stale ids
            else:
                self.index.add(np.array(seqs, np.int64), self.prepare(raw))
        return [d.id for d in documents]

    def delete(self, doc_id: str) -> None:
        """Delete a document.

        Raises:
            NotFoundError: No document has this id, or the collection was deleted.
            StorageError: The store could not be written.
        """
        with self.exclusive(f"deleting a document of collection {self.name!r}", write=True):
            seq = self.store.delete(doc_id)
            if seq is None:
                raise NotFoundError(f"collection {self.name!r} has no document {doc_id!r}")
            self.generation += 1
            if not self.index.remove(np.array([seq], np.int64)):
                self.stale += 1

    def search(
        self,
        raw_queries: Embeddings,
        top_k: int,
        filter: dict[str, Scalar] | None = None,
        check_size: Callable[[int], None] | None = None,
    ) -> list[list[SearchHit]]:
        """The ``top_k`` nearest documents of each raw query vector.

        Args:
            raw_queries: float32 (q, d) raw encoder vectors.
            top_k: Hits per query.
            filter: Metadata equality filter (``DocumentStore.filter_seqs``).
            check_size: Called, before any document is read, with the bytes of text and
                metadata the hits hold (plus ``HIT_OVERHEAD_BYTES`` each); it may raise.

        Returns:
            Per query, up to ``top_k`` hits, best first (cosine in [-1, 1], higher is closer).

        Raises:
            NotFoundError: The collection was deleted.
        """
        with self.exclusive(f"searching collection {self.name!r}"):
            allowed = None if filter is None else self.store.filter_seqs(filter)
            if self.index.ntotal == 0 or (allowed is not None and len(allowed) == 0):
                return [[] for _ in raw_queries]
            scores, seqs = self.index.search(self.prepare(raw_queries), top_k + self.stale, allowed)
            sizes = self.store.sizes(np.unique(seqs[seqs >= 0]).tolist())
            rows = [
                [(float(sc), int(s)) for sc, s in zip(r_scores, r_seqs, strict=True) if s in sizes]
                for r_scores, r_seqs in zip(scores, seqs, strict=True)
            ]
            rows = [row[:top_k] for row in rows]
            if check_size is not None:
                check_size(sum(sizes[s] + HIT_OVERHEAD_BYTES for row in rows for _, s in row))
            docs = self.store.get_by_seqs(sorted({s for row in rows for _, s in row}))
        return [
            [
                SearchHit(docs[s].id, docs[s].text, score, docs[s].metadata, s)
                for score, s in row
                if s in docs
            ]
            for row in rows
        ]

    def ids_of(self, seqs: Sequence[int] | npt.NDArray[np.int64]) -> dict[int, str]:
        """Document ids by seq (documents gone are left out).

        Raises:
            NotFoundError: The collection was deleted.
        """
        with self.exclusive(f"reading collection {self.name!r}"):
            return self.store.ids_by_seqs(seqs)

    def neighbors(
        self, k: int
    ) -> tuple[npt.NDArray[np.int64], Embeddings, npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Every document's ``k`` nearest other documents, by its own index (exact for
        ``flat``, approximate for HNSW/IVF): the collection's kNN graph.

        The vectors are read at once; the index is searched ``_NEIGHBOR_CHUNK`` documents at a
        time, the lock taken per chunk, so searches and writes of others interleave (a document
        stored meanwhile is not in the graph; one deleted meanwhile may stay in it).

        Returns:
            ``(seqs int64 (n,), vectors float32 (n, d') in the index space, neighbors int64
            (n, k) positions into ``seqs`` (-1: none), scores float32 (n, k) cosine, higher is
            closer)``, documents in seq order.

        Raises:
            NotFoundError: The collection was deleted.
            ConflictError: Its transform was refitted while its neighbours were searched.
        """
        with self.exclusive(f"reading collection {self.name!r}"):
            parts = list(self.store.iter_vectors())
            transform = self.transform
        if not parts:
            none = np.zeros((0, k), np.int64)
            vectors = np.zeros((0, self.vector_dimension), np.float32)
            return np.zeros(0, np.int64), vectors, none, none.astype(np.float32)
        seqs = np.concatenate([p[0] for p in parts])
        vectors = np.concatenate([prepare_vectors(p[1], transform) for p in parts])
        chunks = []
        for start in range(0, len(seqs), _NEIGHBOR_CHUNK):  # the lock is held chunk by chunk
            with self.exclusive(f"searching collection {self.name!r}"):
                if self.transform is not transform:
                    raise ConflictError(
                        f"collection {self.name!r} was refitted meanwhile; ask again"
                    )
                chunks.append(
                    self.index.search(vectors[start : start + _NEIGHBOR_CHUNK], k + 1 + self.stale)
                )
        found, scores = knn_positions(seqs, chunks, k)
        return seqs, vectors, found, scores

    def retransform(self, whitening: Whitening, meta: dict[str, Any]) -> None:
        """Switch to a newly fitted whitening and rebuild the index, crash-safely.

        The whitening is saved to a new ``whitening-<id>/`` folder (fsynced) and the new index
        built in memory (a failure changes nothing and removes the folder); then the old index
        file is removed and ``meta`` (the whitening's knobs) with the folder's name is
        committed to the store — the switch point: a crash before it keeps the old whitening,
        after it the new one, and either way the missing index file is rebuilt on opening. The
        previous folder is removed last (a leftover is removed on the next opening).

        Raises:
            NotFoundError: The collection was deleted.
            StorageError: A file or the store could not be written; the old whitening stays.
        """
        with self.exclusive(f"refitting the whitening of collection {self.name!r}", write=True):
            previous = self.folder / (self.meta.get("whitening_dir") or WHITENING_DIR)
            folder = self.folder / f"{WHITENING_DIR}-{uuid.uuid4().hex[:8]}"
            meta = {**meta, "whitening_dir": folder.name}
            try:
                whitening.save(folder)  # its files are fsynced
                fsync_dir(folder)
                index = self._build(whitening)
                (self.folder / INDEX_FILE).unlink(missing_ok=True)
                self.store.set_meta(**meta)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self.meta.update(meta)
            self.transform, self.index, self.stale = whitening, index, 0
            self.checkpoint()
        shutil.rmtree(previous, ignore_errors=True)

    def close(self) -> None:
        """Checkpoint the index and close the store; later calls raise ``NotFoundError``."""
        with self.lock:
            if self.closed:
                return
            self.checkpoint()
            self.closed = True
            self.store.close()

    def destroy(self) -> None:
        """Delete the collection's folder: renamed out of the way first, so that a failure
        leaves the collection whole and usable; then closed and removed (leftovers of a
        failed removal are swept by ``sweep`` on the next start).

        Raises:
            NotFoundError: Already deleted.
            StorageError: The folder could not be renamed; the collection is unchanged.
        """
        with self.exclusive(f"deleting collection {self.name!r}", write=True):
            trash = move_to_trash(self.folder)
            self.closed = True
            self.store.close()
        empty_trash(trash)
