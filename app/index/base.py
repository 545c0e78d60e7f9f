"""The vector-collection boundary: what the services need of one collection, whatever stores it.

``VectorCollection`` is the protocol the service layer composes (search, drift, clustering,
whitening refits); ``app.index.collection.Collection`` (SQLite + FAISS in a folder) is the
first backend, ``app.index.milvus_collection.MilvusCollection`` the second.
``CollectionCatalog`` is where a backend keeps them: a folder
(``app.index.catalog.FolderCatalog``) or a Milvus registry
(``app.index.milvus_catalog.MilvusCatalog``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import faiss
import numpy as np
import numpy.typing as npt

from app.core.errors import NotFoundError, ReadOnlyError, ServiceError, StorageError
from app.core.types import Embeddings
from app.index.store import Document, Scalar
from app.transforms.whitening import Whitening


class VectorTransform(Protocol):
    """What a collection needs of a fitted transform (whitening, flow): a map (n, d) -> (n, k)."""

    @property
    def n_components(self) -> int:
        """k, the output dimension."""
        ...

    def transform(self, embeddings: Embeddings) -> Embeddings:
        """float32 (n, d) -> float32 (n, k)."""
        ...


@dataclass(frozen=True)
class SearchHit:
    """One search result.

    Attributes:
        id: The document's id.
        text: The document's text.
        score: The final score, higher is closer: cosine of the (corrected) vectors in
            [-1, 1], or after a rerank 1 - WRD in [-1, 1] / 1 / (1 + WMD) in (0, 1].
        metadata: The document's metadata.
        seq: The document's key in the index (internal).
        vector_score: After a rerank, the first stage's cosine.
        distance: After a rerank, the WMD / WRD distance (lower is closer).
    """

    id: str
    text: str
    score: float
    metadata: dict[str, Any]
    seq: int = -1
    vector_score: float | None = None
    distance: float | None = None


class VectorCollection(Protocol):
    """One collection of documents with their raw encoder vectors, searchable by cosine of the
    prepared vectors (the optional transform, then L2 norm). Methods raise ``NotFoundError``
    once the collection is deleted and ``StorageError`` when the backend cannot be written.

    Attributes:
        meta: What the collection was made with: ``name``, ``model``, ``pooling``,
            ``dimension`` (raw d), ``index`` (the index description) and its transform's.
        transform: The transform applied before indexing, or ``None``.
        uid: Unique to this open instance (a collection re-created under its name differs).
        generation: Counts this instance's writes; a cache of something computed from the
            documents is current while it is unchanged.
    """

    @property
    def meta(self) -> Mapping[str, Any]: ...

    @property
    def transform(self) -> VectorTransform | None: ...

    @property
    def uid(self) -> str: ...

    @property
    def generation(self) -> int: ...

    @property
    def writable(self) -> bool:
        """``False``: every write raises ``ReadOnlyError``."""
        ...

    @property
    def closed(self) -> bool:
        """Closed or deleted: every later call raises ``NotFoundError``."""
        ...

    @property
    def name(self) -> str:
        """The collection's name."""
        ...

    @property
    def vector_dimension(self) -> int:
        """Dimension of the indexed vectors: the transform's output, else the encoder's d."""
        ...

    def exclusive(self, what: str, *, write: bool = False) -> AbstractContextManager[None]:
        """Hold the collection for a step of several operations (``what`` names it in
        errors); ``write`` on a read-only collection raises ``ReadOnlyError``."""
        ...

    def prepare(self, raw: Embeddings) -> Embeddings:
        """Raw encoder vectors float32 (n, d) to index vectors (n, k)."""
        ...

    def count(self) -> int:
        """Number of documents."""
        ...

    def get(self, doc_id: str) -> Document | None:
        """The document with this id, or ``None``."""
        ...

    def iter_raw_vectors(self, batch: int = 8192) -> Iterator[Embeddings]:
        """The stored raw vectors, float32 (b, d) batches; call inside ``exclusive``."""
        ...

    def upsert(self, documents: Sequence[Document], raw: Embeddings) -> list[str]:
        """Store documents with their raw float32 (n, d) vectors; return their ids."""
        ...

    def delete(self, doc_id: str) -> None:
        """Delete a document (``NotFoundError`` when it does not exist)."""
        ...

    def search(
        self,
        raw_queries: Embeddings,
        top_k: int,
        filter: dict[str, Scalar] | None = None,
        check_size: Callable[[int], None] | None = None,
    ) -> list[list[SearchHit]]:
        """Per raw query float32 (q, d), up to ``top_k`` hits whose metadata equals ``filter``,
        best first (cosine in [-1, 1], higher is closer); ``check_size`` is called with the
        bytes the hits hold before they are read, and may raise."""
        ...

    def ids_of(self, seqs: Sequence[int] | npt.NDArray[np.int64]) -> dict[int, str]:
        """Document ids by seq (documents gone are left out)."""
        ...

    def neighbors(
        self, k: int
    ) -> tuple[npt.NDArray[np.int64], Embeddings, npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The kNN graph: ``(seqs (n,), index vectors (n, d'), neighbours (n, k) positions into
        seqs or -1, cosine scores (n, k))``; ``ConflictError`` if refitted meanwhile."""
        ...

    def retransform(self, whitening: Whitening, meta: dict[str, Any]) -> None:
        """Switch to a newly fitted whitening (saved with the collection; ``meta``: its knobs,
        merged into the collection's) and re-index, crash-safely."""
        ...

    def close(self) -> None:
        """Release the collection; later calls raise ``NotFoundError``."""
        ...

    def destroy(self) -> None:
        """Delete the collection and its documents."""
        ...


#: ``resolve(meta)``: checks that a collection's ``meta`` fits the server's encoder and returns
#: the named transform it uses, or ``None`` when it has none or its own whitening (which the
#: catalog loads). Raises ``ServiceError`` (the collection is then unavailable, with the reason).
ResolveTransform = Callable[[Mapping[str, Any]], VectorTransform | None]


class CollectionCatalog(Protocol):
    """Where a backend keeps its collections: lists, opens, creates and removes them.

    Attributes:
        read_only: Why nothing can be written (``None``: writable); set by ``start``.
        shared: Other processes may change the collections (a Milvus server): the service
            checks ``revision`` on every access instead of trusting what it opened.
    """

    read_only: str | None
    shared: bool

    def start(self) -> None:
        """Prepare the storage (create it, check it can be written, clear leftovers)."""
        ...

    def names(self) -> list[str]:
        """The collections stored, sorted."""
        ...

    def revision(self, name: str) -> str | None:
        """What identifies the stored state of ``name`` (changes when it is re-created or
        refitted); ``None``: it does not exist."""
        ...

    def open(self, name: str, resolve: ResolveTransform) -> VectorCollection:
        """Open a stored collection with its transform. Raises what ``resolve`` raises,
        ``NotFoundError``, ``StorageError``, or the backend's errors (a damaged collection)."""
        ...

    def create(self, meta: dict[str, Any], transform: VectorTransform | None) -> VectorCollection:
        """Create an empty collection, all or nothing. Raises ``ConflictError`` (name taken),
        ``InputValidationError`` (index not available here), ``StorageError``."""
        ...

    def remove(self, name: str) -> None:
        """Remove what is stored of a collection that could not be opened. Raises
        ``StorageError``."""
        ...

    def close(self) -> None:
        """Release the connection (the collections are closed by their owner)."""
        ...


class CollectionBase:
    """What both backends share: the name, the index dimension, ``prepare`` and the
    ``exclusive`` step (a process-local lock, the deleted and read-only checks, and the
    backend's failures turned into ``StorageError``). Subclasses set ``failures`` and
    ``failure`` (the mapping) and ``read_only_reason``.

    Args:
        meta: What the collection was made with (see ``VectorCollection``).
        transform: Applied to raw vectors before L2 normalisation and indexing.
        writable: ``False``: every write raises ``ReadOnlyError``.
    """

    #: The backend's exceptions that mean a storage failure.
    failures: ClassVar[tuple[type[BaseException], ...]] = ()
    #: Why a read-only collection is read-only, and what to do (ends the refusal message).
    read_only_reason: ClassVar[str] = "the collection is read-only"

    def __init__(
        self, meta: dict[str, Any], transform: VectorTransform | None, *, writable: bool
    ) -> None:
        self.meta = meta
        self.transform = transform
        self.writable = writable
        self.lock = threading.RLock()
        self.closed = False
        #: Unique to this open instance (a collection re-created under the same name differs).
        self.uid = uuid.uuid4().hex
        #: Counts the writes of this open instance (documents stored or deleted): a cache of
        #: something computed from the documents is current while it is unchanged.
        self.generation = 0

    @property
    def name(self) -> str:
        """The collection's name."""
        return str(self.meta["name"])

    @property
    def vector_dimension(self) -> int:
        """Dimension of the indexed vectors: the transform's output, else the encoder's d."""
        return index_dimension(self.meta, self.transform)

    def prepare(self, raw: Embeddings) -> Embeddings:
        """Raw encoder vectors (n, d) to index vectors (n, k): the transform, then L2 norm."""
        return prepare_vectors(raw, self.transform)

    def failure(self, what: str, exc: BaseException) -> ServiceError:
        """The domain error (``StorageError`` unless the backend knows better) for one of
        ``failures`` raised while doing ``what``."""
        return StorageError(f"{what} failed: {exc}")

    @contextmanager
    def exclusive(self, what: str, *, write: bool = False) -> Iterator[None]:
        """Hold the collection's lock for a step of several operations.

        Args:
            what: The step, for error messages (``"searching collection 'faq'"``).
            write: The step writes: refused when the collection is read-only.

        Raises:
            NotFoundError: The collection was deleted (before the lock was had).
            ReadOnlyError: ``write`` on a read-only collection.
            StorageError: One of the backend's ``failures`` inside the step.
        """
        with self.lock:
            if self.closed:
                raise NotFoundError(f"collection {self.name!r} was deleted")
            if write and not self.writable:
                raise ReadOnlyError(f"{what} refused: {self.read_only_reason}")
            try:
                yield
            except self.failures as exc:
                raise self.failure(what, exc) from None


def index_dimension(meta: Mapping[str, Any], transform: VectorTransform | None) -> int:
    """Dimension of the indexed vectors: the transform's output, else the encoder's d."""
    return transform.n_components if transform else int(meta["dimension"])


def prepare_vectors(raw: Embeddings, transform: VectorTransform | None) -> Embeddings:
    """Raw encoder vectors float32 (n, d) to index vectors (n, k): the transform, then unit
    length (a zero vector stays zero), as a new array."""
    x = np.array(raw if transform is None else transform.transform(raw), np.float32)
    faiss.normalize_L2(x)  # in place, on the copy
    return x


def knn_positions(
    seqs: npt.NDArray[np.int64],
    chunks: Sequence[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    k: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """A kNN graph from an index's answers for every document's own vector.

    Args:
        seqs: int64 (n,) the documents' keys, in the order their vectors were searched.
        chunks: The searches, in order: ``(scores float32 (b, w), found seqs int64 (b, w))``,
            -1 where nothing was found; widths may differ.
        k: Neighbours kept per document.

    Returns:
        ``(neighbours int64 (n, k) positions into seqs, -1 for none; cosine scores float32
        (n, k), 0 where none)``, best first, each document itself and seqs not in ``seqs`` left
        out.
    """
    width = max(c[1].shape[1] for c in chunks)
    scores = np.concatenate(
        [
            np.pad(c[0], ((0, 0), (0, width - c[0].shape[1])), constant_values=-np.inf)
            for c in chunks
        ]
    )
    found = np.concatenate(
        [np.pad(c[1], ((0, 0), (0, width - c[1].shape[1])), constant_values=-1) for c in chunks]
    )
    order = np.argsort(seqs, kind="stable")
    ranked = seqs[order]
    at = np.minimum(np.searchsorted(ranked, found), len(seqs) - 1)
    known = (found >= 0) & (ranked[at] == found)
    position = np.where(known, order[at], -1)
    position[position == np.arange(len(seqs))[:, None]] = -1  # itself
    if position.shape[1] < k:  # fewer documents than k + 1
        pad = k - position.shape[1]
        position = np.pad(position, ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, pad)))
    scores = np.where(position >= 0, scores, -np.inf).astype(np.float32)
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    position, scores = np.take_along_axis(position, best, 1), np.take_along_axis(scores, best, 1)
    position[~np.isfinite(scores)] = -1
    return position, np.where(np.isfinite(scores), scores, 0).astype(np.float32)
