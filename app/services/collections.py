"""Collections: named sets of documents searchable by meaning, that survive restarts.

Each collection is a folder under the indexes directory:

- ``store.sqlite``: documents, metadata and raw encoder vectors (the source of truth);
- ``index.faiss``: a FAISS ``IndexIDMap2`` of the corrected, L2-normalised vectors — a cache,
  saved by atomic replace and reconciled with the store on start-up (stale ids removed,
  missing ones added from the stored raw vectors, no re-encoding);
- ``whitening/``: the collection's BERT-whitening, once fitted on its own documents.

Instead of its own whitening, a collection may name a fitted transform under the models folder
(``sentsim fit-whitening`` or ``sentsim fit-flow`` output), applied to documents and queries.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import (
    BatchTooLargeError,
    ConflictError,
    EmptyInputError,
    InputValidationError,
    NotFoundError,
    NotReadyError,
    ServiceError,
)
from app.core.types import Embeddings
from app.index.faiss_index import FaissIndex, check_spec
from app.index.store import Document, DocumentStore, Scalar
from app.services.batching import MicroBatcher
from app.services.transforms import TransformRegistry
from app.services.transport import TokenCache, check_measure
from app.similarity.ot import Measure, distance_to_score, top_k_transport
from app.transforms.base import EmbeddingTransform
from app.transforms.normalize import l2_normalize
from app.transforms.whitening import Whitening

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}$")
INDEX_FILE = "index.faiss"
STORE_FILE = "store.sqlite"
WHITENING_DIR = "whitening"


@dataclass(frozen=True)
class Limits:
    """Request limits (sentences, characters, documents, neighbours)."""

    max_client_batch_size: int = 256
    max_sentence_chars: int = 10_000
    max_top_k: int = 100
    max_upsert_documents: int = 1000
    max_rerank_candidates: int = 200

    def check_sentences(self, sentences: Sequence[str], what: str = "sentences") -> None:
        """Raise ``EmptyInputError`` / ``BatchTooLargeError`` for empty or oversize input."""
        if not sentences:
            raise EmptyInputError(f"no {what} given")
        if len(sentences) > self.max_client_batch_size:
            raise BatchTooLargeError(
                f"{len(sentences)} {what} in one request; the limit is "
                f"{self.max_client_batch_size} (SENTSIM_MAX_CLIENT_BATCH_SIZE): split the request"
            )
        for i, s in enumerate(sentences):
            if not s.strip():
                raise EmptyInputError(f"{what}[{i}] is empty")
            if len(s) > self.max_sentence_chars:
                raise BatchTooLargeError(
                    f"{what}[{i}] has {len(s)} characters; the limit is {self.max_sentence_chars}"
                )


@dataclass(frozen=True)
class EncoderInfo:
    """What a collection's vectors must come from."""

    model: str
    pooling: str
    dimension: int


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
class WhiteningConfig:
    """Knobs of a collection's whitening (DESIGN.md §2): k, beta, gamma."""

    n_components: int | None = None
    beta: float = 1.0
    gamma: float = 1.0


class Collection:
    """One collection: its store, its index and its optional whitening. Thread-safe.

    Use ``Collection.create`` or ``Collection.open``.
    """

    def __init__(
        self,
        folder: Path,
        store: DocumentStore,
        meta: dict[str, Any],
        transform: EmbeddingTransform | None,
    ) -> None:
        self.folder = folder
        self.store = store
        self.meta = meta
        self.transform = transform
        self.lock = threading.RLock()
        empty = np.zeros((0, self.vector_dimension), np.float32)
        self.index = FaissIndex.build(
            self.vector_dimension, meta["index"], np.zeros(0, np.int64), empty
        )
        self.stale = 0  # ids in the index whose document is gone (index types without remove)

    @property
    def name(self) -> str:
        """The collection's name."""
        return str(self.meta["name"])

    @property
    def vector_dimension(self) -> int:
        """Dimension of the indexed vectors: the transform's output, else the encoder's d."""
        return self.transform.n_components if self.transform else int(self.meta["dimension"])

    @classmethod
    def create(
        cls,
        folder: Path,
        name: str,
        index: str,
        whitening: WhiteningConfig | None,
        encoder: EncoderInfo,
        transform_name: str | None = None,
        transform: EmbeddingTransform | None = None,
    ) -> Collection:
        """Create the folder, the store and an empty index (``transform``: a named, fitted
        transform from the models folder, used instead of the collection's own whitening)."""
        check_spec(index, encoder.dimension)
        if whitening and whitening.n_components and whitening.n_components > encoder.dimension:
            raise InputValidationError(
                f"whitening k={whitening.n_components} exceeds the model's dimension "
                f"d={encoder.dimension}"
            )
        folder.mkdir(parents=True)
        store = DocumentStore(folder / STORE_FILE)
        meta = {
            "name": name,
            "index": index,
            "whitening": None if whitening is None else whitening.__dict__,
            "model": encoder.model,
            "pooling": encoder.pooling,
            "dimension": encoder.dimension,
            "transform_name": transform_name,
        }
        store.set_meta(**meta)
        collection = cls(folder, store, meta, transform)
        collection.checkpoint()
        return collection

    @classmethod
    def open(
        cls, folder: Path, encoder: EncoderInfo, transforms: TransformRegistry | None = None
    ) -> Collection:
        """Open a collection and reconcile its index with the store.

        Raises:
            ConflictError: It was built with another model, pooling or dimension, or its
                named transform cannot be loaded.
        """
        store = DocumentStore(folder / STORE_FILE)
        meta = store.get_meta()
        built = (meta.get("model"), meta.get("pooling"), meta.get("dimension"))
        if built != (encoder.model, encoder.pooling, encoder.dimension):
            store.close()
            raise ConflictError(
                f"collection {folder.name!r} was built with model {built[0]!r}, pooling "
                f"{built[1]!r}, d={built[2]}; the server runs {encoder.model!r}, "
                f"{encoder.pooling!r}, d={encoder.dimension}"
            )
        transform: EmbeddingTransform | None = None
        if meta.get("transform_name"):
            try:
                if transforms is None:
                    raise NotFoundError("no models folder to load it from")
                transform = transforms.get(meta["transform_name"])
            except ServiceError as exc:
                store.close()
                raise ConflictError(
                    f"collection {folder.name!r} uses transform {meta['transform_name']!r}: {exc}"
                ) from exc
        elif (folder / WHITENING_DIR).is_dir():
            transform = Whitening.load(folder / WHITENING_DIR, dimension=encoder.dimension)
        collection = cls(folder, store, meta, transform)
        collection.reconcile()
        return collection

    def prepare(self, raw: Embeddings) -> Embeddings:
        """Raw encoder vectors (n, d) to index vectors (n, k): the transform, then L2 norm."""
        x = raw if self.transform is None else self.transform.transform(raw)
        return l2_normalize(x)

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

    def rebuild(self) -> None:
        """Build the index afresh from every stored vector (training it if it needs it)."""
        with self.lock:
            seqs, vectors = self._all_prepared()
            self.index = FaissIndex.build(self.vector_dimension, self.meta["index"], seqs, vectors)
            self.stale = 0
            self.checkpoint()

    def _all_prepared(self) -> tuple[np.ndarray, Embeddings]:
        parts = [(s, self.prepare(v)) for s, v in self.store.iter_vectors()]
        if not parts:
            return np.zeros(0, np.int64), np.zeros((0, self.vector_dimension), np.float32)
        return np.concatenate([p[0] for p in parts]), np.vstack([p[1] for p in parts])

    def checkpoint(self) -> None:
        """Save the index (atomic replace)."""
        with self.lock:
            self.index.save(self.folder / INDEX_FILE)

    def upsert(self, documents: Sequence[Document], raw: Embeddings) -> list[str]:
        """Store documents with their raw vectors (committed first), then index them."""
        with self.lock:
            seqs, replaced = self.store.upsert(documents, raw)
            if replaced and not self.index.remove(np.array(replaced, np.int64)):
                self.stale += len(replaced)
            if self.index.exact_fallback or self.stale > max(1000, self.index.ntotal // 5):
                self.rebuild()  # train a waiting IVF index, or drop many stale ids
            else:
                self.index.add(np.array(seqs, np.int64), self.prepare(raw))
        return [d.id for d in documents]

    def delete(self, doc_id: str) -> None:
        """Delete a document.

        Raises:
            NotFoundError: No document has this id.
        """
        with self.lock:
            seq = self.store.delete(doc_id)
            if seq is None:
                raise NotFoundError(f"collection {self.name!r} has no document {doc_id!r}")
            if not self.index.remove(np.array([seq], np.int64)):
                self.stale += 1

    def search(
        self, raw_queries: Embeddings, top_k: int, where: dict[str, Scalar] | None
    ) -> list[list[SearchHit]]:
        """The ``top_k`` nearest documents of each raw query vector (q, d)."""
        with self.lock:
            allowed = None if where is None else self.store.filter_seqs(where)
            if self.index.ntotal == 0 or (allowed is not None and len(allowed) == 0):
                return [[] for _ in raw_queries]
            scores, seqs = self.index.search(self.prepare(raw_queries), top_k + self.stale, allowed)
            docs = self.store.get_by_seqs(np.unique(seqs[seqs >= 0]).tolist())
        results = []
        for row_scores, row_seqs in zip(scores, seqs, strict=True):
            hits = [
                SearchHit(docs[s].id, docs[s].text, float(score), docs[s].metadata, int(s))
                for score, s in zip(row_scores, row_seqs, strict=True)
                if s in docs
            ]
            results.append(hits[:top_k])
        return results

    def refit_whitening(self, config: WhiteningConfig) -> None:
        """Fit whitening on the collection's own raw vectors and rebuild its index.

        Raises:
            EmptyInputError: The collection has no documents.
            InputValidationError: k exceeds the dimension.
        """
        if self.meta.get("transform_name"):
            raise ConflictError(
                f"collection {self.name!r} uses the named transform "
                f"{self.meta['transform_name']!r}; create one without it to fit its own whitening"
            )
        with self.lock:
            whitening = Whitening(
                config.n_components,
                beta=config.beta,
                gamma=config.gamma,
                model=self.meta["model"],
                pooling=self.meta["pooling"],
            ).fit(raw for _, raw in self.store.iter_vectors())
            staging = self.folder / (WHITENING_DIR + ".new")
            shutil.rmtree(staging, ignore_errors=True)
            whitening.save(staging)
            shutil.rmtree(self.folder / WHITENING_DIR, ignore_errors=True)
            staging.rename(self.folder / WHITENING_DIR)
            self.transform = whitening
            self.meta["whitening"] = config.__dict__
            self.store.set_meta(whitening=config.__dict__)
            self.rebuild()

    def info(self) -> dict[str, Any]:
        """``{"name", "count", "dimension", "index", "transform"}`` (the wire shape)."""
        transform: dict[str, Any] | str = "none"
        if self.transform is not None:
            meta = self.transform.metadata
            keys = ("type", "n_components", "beta", "gamma", "steps", "n_fitted")
            transform = {k: meta[k] for k in keys if k in meta}
            if self.meta.get("transform_name"):
                transform["name"] = self.meta["transform_name"]
        return {
            "name": self.name,
            "count": self.store.count(),
            "dimension": self.vector_dimension,
            "index": self.meta["index"],
            "transform": transform,
        }


class CollectionService:
    """All collections under one folder, sharing one encoder through the micro-batcher.

    Args:
        root: The indexes folder (created if missing).
        batcher: Encodes documents and queries.
        encoder: Model, pooling and d of the encoder behind the batcher.
        limits: Request limits.
        encode_tokens: The encoder's ``encode_tokens`` (for reranking), run on the model thread.
        token_cache: Cache of documents' token vectors for reranking (default: none).
        transforms: Named transforms under the models folder, for collections that use one.
    """

    def __init__(
        self,
        root: Path,
        batcher: MicroBatcher,
        encoder: EncoderInfo,
        limits: Limits,
        encode_tokens: Callable[[list[str]], list[np.ndarray]] | None = None,
        token_cache: TokenCache | None = None,
        transforms: TransformRegistry | None = None,
    ) -> None:
        self.root = root
        self.batcher = batcher
        self.encoder = encoder
        self.limits = limits
        self.encode_tokens = encode_tokens
        self.token_cache = token_cache or TokenCache(0)
        self.transforms = transforms
        self._collections: dict[str, Collection] = {}
        self._lock = threading.Lock()

    def open_all(self) -> None:
        """Open (and reconcile) every collection folder; log and skip unusable ones."""
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in sorted(p for p in self.root.iterdir() if (p / STORE_FILE).is_file()):
            try:
                self._collections[folder.name] = Collection.open(
                    folder, self.encoder, self.transforms
                )
            except ConflictError as exc:
                logger.warning("skipping collection: %s", exc)

    def close(self) -> None:
        """Checkpoint every index and close the stores."""
        with self._lock:
            for collection in self._collections.values():
                collection.checkpoint()
                collection.store.close()
            self._collections.clear()

    def _get(self, name: str) -> Collection:
        collection = self._collections.get(name)
        if collection is None:
            raise NotFoundError(f"no collection named {name!r}; create it with POST /collections")
        return collection

    def create(
        self,
        name: str,
        index: str = "flat",
        whitening: WhiteningConfig | None = None,
        transform: str | None = None,
    ) -> dict[str, Any]:
        """Create an empty collection, optionally with a named transform from the models folder.

        Raises:
            InputValidationError: Bad name or index spec, or both whitening and a transform.
            NotFoundError, TransformMismatchError: The named transform is missing or unfit.
            ConflictError: The name is taken.
        """
        if not NAME_PATTERN.match(name):
            raise InputValidationError(f"collection name {name!r} must match [a-z0-9_-]{{1,64}}")
        fitted = None
        if transform is not None:
            if whitening is not None:
                raise InputValidationError("give whitening knobs or a named transform, not both")
            if self.transforms is None:
                raise NotFoundError("this service has no models folder for named transforms")
            fitted = self.transforms.get(transform)
        with self._lock:
            if name in self._collections or (self.root / name).exists():
                raise ConflictError(f"collection {name!r} already exists")
            collection = Collection.create(
                self.root / name, name, index, whitening, self.encoder, transform, fitted
            )
            self._collections[name] = collection
        return collection.info()

    def list_collections(self) -> list[dict[str, Any]]:
        """Every collection's info, by name."""
        return [c.info() for _, c in sorted(self._collections.items())]

    def info(self, name: str) -> dict[str, Any]:
        """One collection's info. Raises ``NotFoundError``."""
        return self._get(name).info()

    def delete(self, name: str) -> None:
        """Delete a collection and its files. Raises ``NotFoundError``."""
        with self._lock:
            collection = self._get(name)
            with collection.lock:
                collection.store.close()
                shutil.rmtree(collection.folder)
            del self._collections[name]
        self.token_cache.drop(name)

    async def upsert(self, name: str, documents: Sequence[Document]) -> list[str]:
        """Encode and store documents (an existing id is replaced); return their ids.

        Raises:
            NotFoundError, BatchTooLargeError, EmptyInputError, InputValidationError.
        """
        collection = self._get(name)
        if len(documents) > self.limits.max_upsert_documents:
            raise BatchTooLargeError(
                f"{len(documents)} documents in one upsert; the limit is "
                f"{self.limits.max_upsert_documents} (SENTSIM_MAX_UPSERT_DOCUMENTS)"
            )
        if not documents:
            raise EmptyInputError("no documents given")
        texts = [d.text for d in documents]
        for i, text in enumerate(texts):
            if not text.strip():
                raise EmptyInputError(f"documents[{i}].text is empty")
            if len(text) > self.limits.max_sentence_chars:
                raise BatchTooLargeError(
                    f"documents[{i}].text has {len(text)} characters; the limit is "
                    f"{self.limits.max_sentence_chars}"
                )
        docs = [d if d.id else Document(uuid.uuid4().hex, d.text, d.metadata) for d in documents]
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            raise InputValidationError("document ids repeat within the request")
        raw = await self.batcher.encode(texts)
        return await asyncio.to_thread(collection.upsert, docs, raw)

    def get_document(self, name: str, doc_id: str) -> Document:
        """A stored document. Raises ``NotFoundError``."""
        doc = self._get(name).store.get(doc_id)
        if doc is None:
            raise NotFoundError(f"collection {name!r} has no document {doc_id!r}")
        return doc

    def delete_document(self, name: str, doc_id: str) -> None:
        """Delete a document. Raises ``NotFoundError``."""
        self._get(name).delete(doc_id)

    async def search(
        self,
        name: str,
        queries: Sequence[str],
        top_k: int = 10,
        where: dict[str, Scalar] | None = None,
        rerank: Rerank | None = None,
    ) -> list[list[SearchHit]]:
        """Semantic search: the ``top_k`` documents nearest each query, best first.

        With ``rerank``, the first stage fetches ``rerank.candidates`` hits by vector search
        and the second reorders them by WRD / WMD over token vectors (pruned exact transport),
        each hit keeping its first-stage ``vector_score``.

        Raises:
            NotFoundError, BatchTooLargeError, EmptyInputError, InputValidationError.
        """
        collection = self._get(name)
        self.limits.check_sentences(queries, "queries")
        if not 1 <= top_k <= self.limits.max_top_k:
            raise BatchTooLargeError(f"top_k={top_k}; it must be in [1, {self.limits.max_top_k}]")
        first_k, measure = top_k, None
        if rerank is not None:
            measure = check_measure(rerank.method)
            if not 1 <= rerank.candidates <= self.limits.max_rerank_candidates:
                raise BatchTooLargeError(
                    f"rerank.candidates={rerank.candidates}; it must be in "
                    f"[1, {self.limits.max_rerank_candidates}] (SENTSIM_MAX_RERANK_CANDIDATES)"
                )
            first_k = max(top_k, rerank.candidates)
        raw = await self.batcher.encode(list(queries))
        hits = await asyncio.to_thread(collection.search, raw, first_k, where)
        if measure is None:
            return hits
        return await self._rerank(name, list(queries), hits, top_k, measure)

    async def _rerank(
        self,
        name: str,
        queries: list[str],
        hits: list[list[SearchHit]],
        top_k: int,
        measure: Measure,
    ) -> list[list[SearchHit]]:
        if self.encode_tokens is None:
            raise NotReadyError("reranking needs the encoder's token vectors")
        tokens: dict[int, np.ndarray] = {}
        for h in (h for row in hits for h in row):
            cached = self.token_cache.get((name, h.seq))
            if cached is not None:
                tokens[h.seq] = cached
        missing = {h.seq: h.text for row in hits for h in row if h.seq not in tokens}
        texts = list(queries) + list(missing.values())
        encoded = await self.batcher.run(self.encode_tokens, texts)
        for seq, vectors in zip(missing, encoded[len(queries) :], strict=True):
            tokens[seq] = vectors
            self.token_cache.put((name, seq), vectors)

        def rank() -> list[list[SearchHit]]:
            out = []
            for query_tokens, row in zip(encoded[: len(queries)], hits, strict=True):
                best = top_k_transport(query_tokens, [tokens[h.seq] for h in row], top_k, measure)
                out.append(
                    [
                        replace(
                            row[i],
                            score=distance_to_score(d, measure),
                            vector_score=row[i].score,
                            distance=d,
                        )
                        for i, d in best
                    ]
                )
            return out

        return await asyncio.to_thread(rank)

    async def refit_whitening(
        self,
        name: str,
        *,
        n_components: int | None = None,
        beta: float | None = None,
        gamma: float | None = None,
    ) -> dict[str, Any]:
        """(Re)fit a collection's whitening on its documents and rebuild its index.

        Each knob left ``None`` keeps the collection's stored one (standard whitening, all d
        components, if it has none).

        Raises:
            NotFoundError, EmptyInputError, InputValidationError.
        """
        collection = self._get(name)
        stored = WhiteningConfig(**(collection.meta.get("whitening") or {}))
        config = WhiteningConfig(
            n_components=n_components if n_components is not None else stored.n_components,
            beta=beta if beta is not None else stored.beta,
            gamma=gamma if gamma is not None else stored.gamma,
        )
        if collection.store.count() == 0:
            raise EmptyInputError(f"collection {name!r} has no documents to fit whitening on")
        if config.n_components and config.n_components > self.encoder.dimension:
            raise InputValidationError(
                f"whitening k={config.n_components} exceeds d={self.encoder.dimension}"
            )
        await asyncio.to_thread(collection.refit_whitening, config)
        return collection.info()
