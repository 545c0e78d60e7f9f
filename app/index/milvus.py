"""The ``milvus`` backend: ``MilvusCollection`` (a ``VectorCollection``) and ``MilvusCatalog``
(a ``CollectionCatalog``), in a Milvus Lite file or on a Milvus server.

Every collection is one Milvus collection ("physical", ``sentsim_<name>_<id>``) holding, per
document: ``seq`` (INT64 primary key, random 63 bits: replicas assign keys without a shared
counter), ``doc_id``, ``text``, ``metadata`` (JSON), ``raw`` (the encoder's float32 vector,
for refits and reranks) and ``vector`` (the prepared one, indexed by inner product = cosine).
The registry (``app.index.milvus_registry``) maps each name to its ``meta`` and its physical
collection, so that any process connected to the same Milvus sees the same collections. Reads
and writes are at Strong consistency (a write is seen by the next read, in any process).

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

Metadata filters become Milvus boolean expressions with keys and string values escaped as JSON
string literals. Milvus compares JSON numbers and booleans alike (``== 1`` also matches
``true``) and ``is null`` also matches a missing key, so hits are checked again in Python for
the exact ``DocumentStore.filter_seqs`` semantics, searching deeper while too few remain.

Milvus Lite (``milvus-lite``) opens a file in one process only; ``milvus-lite server
--data-dir DIR --port P`` serves it to several (``uri="http://127.0.0.1:P"``).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from pymilvus import DataType, MilvusClient, MilvusException
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from app.core.errors import (
    ConflictError,
    InputValidationError,
    NotFoundError,
    ServiceError,
    StorageError,
)
from app.core.types import Embeddings
from app.index.base import (
    CollectionBase,
    ResolveTransform,
    SearchHit,
    VectorTransform,
    knn_positions,
    prepare_vectors,
)
from app.index.faiss_index import HNSW_EF_SEARCH, parse_spec
from app.index.milvus_registry import (
    STRONG,
    drop_blob,
    ensure_bookkeeping,
    load_blob,
    lookup,
    register,
    registered,
    save_blob,
    unregister,
)
from app.index.store import Document, Scalar
from app.transforms.whitening import Whitening

#: Milvus answers at most this many hits per query (its topk limit).
MAX_LIMIT = 16384
#: Rows read per request when iterating a collection.
_BATCH = 4096
#: Documents whose neighbours one locked search finds (``MilvusCollection.neighbors``).
_NEIGHBOR_CHUNK = 1024
#: Seqs per ``seq in [...]`` filter.
_IN_CHUNK = 1024
#: Milvus's code for "collection does not exist".
_NO_COLLECTION = 100

T = TypeVar("T")


def _literal(value: Scalar) -> str:
    """A JSON scalar as a Milvus expression literal (strings escaped as JSON strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not np.isfinite(value):
            raise InputValidationError("filter values must be finite numbers")
        return repr(value)
    return json.dumps(value)


def filter_expression(where: dict[str, Scalar] | None) -> str:
    """A metadata equality filter as a Milvus boolean expression that matches at least the
    documents ``DocumentStore.filter_seqs`` matches (see the module's note on exactness).

    Raises:
        InputValidationError: A value is not a JSON scalar.
    """
    clauses = []
    for key, value in (where or {}).items():
        if isinstance(value, dict | list):
            raise InputValidationError(f"filter value of {key!r} must be a scalar")
        field = f"metadata[{json.dumps(key)}]"
        clauses.append(f"{field} is null" if value is None else f"{field} == {_literal(value)}")
    return " and ".join(clauses)


def matches(metadata: dict[str, Any], where: dict[str, Scalar] | None) -> bool:
    """Whether metadata equals ``where`` on every key, by JSON type and value (``1`` matches
    ``1`` and ``1.0``, not ``"1"`` or ``true``; ``None`` matches a stored null only)."""
    for key, value in (where or {}).items():
        if key not in metadata:
            return False
        stored = metadata[key]
        if isinstance(value, bool) or isinstance(stored, bool) or value is None or stored is None:
            if type(stored) is not type(value) or stored != value:
                return False
        elif isinstance(value, int | float) != isinstance(stored, int | float) or stored != value:
            return False
    return True


def _physical_name(name: str) -> str:
    """A Milvus collection name (letters, digits, underscores) for a collection name
    (``[a-z0-9_-]``), one-to-one, plus a random part so that a re-created one differs."""
    return f"sentsim_{name.replace('_', '_u').replace('-', '_d')}_{uuid.uuid4().hex[:8]}"


def _index_params(client: MilvusClient, spec: str, dimension: int) -> Any:
    """FLAT for ``flat``, HNSW for ``hnsw`` / ``HNSW<M>``; the raw vectors get FLAT (Milvus
    indexes every vector field). IVF forms are FAISS's only."""
    factory = parse_spec(spec, dimension).factory
    params = client.prepare_index_params()
    params.add_index("raw", index_type="FLAT", metric_type="IP")
    if factory == "Flat":
        params.add_index("vector", index_type="FLAT", metric_type="IP")
    elif factory.startswith("HNSW"):
        m = int(factory.removeprefix("HNSW"))
        params.add_index(
            "vector", index_type="HNSW", metric_type="IP", params={"M": m, "efConstruction": 200}
        )
    else:
        raise InputValidationError(
            f"index {spec!r} is not available on the Milvus backend; use flat or hnsw / HNSW<M>"
        )
    return params


def _search_params(spec: str, dimension: int, limit: int) -> dict[str, Any]:
    factory = parse_spec(spec, dimension).factory
    if factory.startswith("HNSW"):
        return {"metric_type": "IP", "params": {"ef": max(HNSW_EF_SEARCH, limit)}}
    return {"metric_type": "IP"}


class MilvusCollection(CollectionBase):
    """One collection in Milvus (see the module's notes). Thread-safe within a process.

    Use ``create`` for a new collection and ``open`` for an existing one.

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

    @classmethod
    def create(
        cls, client: MilvusClient, meta: dict[str, Any], transform: VectorTransform | None = None
    ) -> MilvusCollection:
        """Create the collection and register it (the registry row is the switch point).

        Raises:
            ConflictError: The name is taken.
            InputValidationError: The index description is not accepted here.
            StorageError: Milvus refused.
        """
        name = str(meta["name"])
        try:
            if lookup(client, name) is not None:
                raise ConflictError(f"collection {name!r} already exists")
            made = cls(client, dict(meta), _physical_name(name), transform)
            made._make_physical(made.physical, made.vector_dimension)
            try:
                register(client, name, made.physical, made.meta)
                winner = lookup(client, name)
            except BaseException:
                client.drop_collection(made.physical)  # no orphan left behind
                raise
            if winner is None or winner[0] != made.physical:  # another replica's create won
                client.drop_collection(made.physical)
                raise ConflictError(f"collection {name!r} already exists")
        except MilvusException as exc:
            raise _storage_error(f"creating collection {name!r}", exc) from None
        return made

    @classmethod
    def open(
        cls, client: MilvusClient, name: str, transform: VectorTransform | None = None
    ) -> MilvusCollection:
        """The registered collection ``name``, with ``transform`` or else its own whitening.

        Raises:
            NotFoundError: No collection has this name.
        """
        found = lookup(client, name)
        if found is None:
            raise NotFoundError(f"collection {name!r} does not exist")
        return cls._registered(client, *found, transform)

    @classmethod
    def _registered(
        cls,
        client: MilvusClient,
        physical: str,
        meta: dict[str, Any],
        transform: VectorTransform | None,
    ) -> MilvusCollection:
        """The collection a registry row describes, loaded, with its own whitening if
        ``transform`` is ``None`` and it has one."""
        name = str(meta["name"])
        client.load_collection(physical)  # Milvus releases collections when it restarts
        if transform is None and meta.get("whitening_blob"):
            data = load_blob(client, meta["whitening_blob"])
            if data is None:
                raise NotFoundError(f"the whitening of collection {name!r} is missing")
            transform = Whitening.from_tensors(meta["whitening_metadata"], load_tensors(data))
        return cls(client, meta, physical, transform)

    def _make_physical(self, physical: str, dimension: int) -> None:
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("seq", DataType.INT64, is_primary=True)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
        schema.add_field("text", DataType.VARCHAR, max_length=65535)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("raw", DataType.FLOAT_VECTOR, dim=int(self.meta["dimension"]))
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        self.client.create_collection(
            physical,
            schema=schema,
            index_params=_index_params(self.client, self.meta["index"], dimension),
            consistency_level=STRONG,
        )

    def failure(self, what: str, exc: BaseException) -> ServiceError:
        """Milvus's code and message, and what to do; a physical collection gone means another
        replica deleted or refitted the collection meanwhile (``ConflictError``: retry)."""
        assert isinstance(exc, MilvusException)
        if exc.code == _NO_COLLECTION:
            return ConflictError(
                f"{what} failed: collection {self.name!r} was deleted or refitted by another "
                "replica meanwhile; retry"
            )
        return _storage_error(what, exc)

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

    def iter_raw_vectors(self, batch: int = _BATCH) -> Iterator[Embeddings]:
        """The stored raw vectors, float32 (b, d) batches; call inside ``exclusive``."""
        for rows in self._iter_rows(["raw"], batch):
            yield np.array([r["raw"] for r in rows], dtype=np.float32)

    def _iter_rows(
        self, fields: list[str], batch: int = _BATCH, *, physical: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        iterator = self.client.query_iterator(
            physical or self.physical, batch_size=batch, filter="", output_fields=["seq", *fields]
        )
        try:
            while rows := iterator.next():
                yield rows
        finally:
            iterator.close()

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
        where: dict[str, Scalar] | None = None,
        check_size: Callable[[int], None] | None = None,
    ) -> list[list[SearchHit]]:
        """The ``top_k`` nearest documents of each raw query vector whose metadata equals
        ``where``, best first (cosine in [-1, 1], higher is closer). ``check_size`` is
        called with the bytes the hits' text and metadata hold (read with the hits: Milvus
        returns them in the same answer) and may raise."""
        expression = filter_expression(where)
        queries = self.prepare(raw_queries)
        with self.exclusive(f"searching collection {self.name!r}"):
            results = [self._search_one(q, top_k, expression, where) for q in queries]
        if check_size is not None:
            size = sum(
                len(h.text.encode()) + len(json.dumps(h.metadata).encode()) + 64
                for hits in results
                for h in hits
            )
            check_size(size)
        return results

    def _search_one(
        self, query: npt.NDArray[np.float32], top_k: int, expression: str, where: Any
    ) -> list[SearchHit]:
        limit = min(top_k, MAX_LIMIT)
        while True:
            answer = self.client.search(
                self.physical,
                data=[query.tolist()],
                anns_field="vector",
                limit=limit,
                filter=expression,
                output_fields=["doc_id", "text", "metadata"],
                search_params=_search_params(self.meta["index"], len(query), limit),
            )[0]
            hits = [
                SearchHit(
                    h["entity"]["doc_id"],
                    h["entity"]["text"],
                    float(h["distance"]),
                    dict(h["entity"]["metadata"]),
                    int(h["seq"]),
                )
                for h in answer
                if matches(h["entity"]["metadata"], where)
            ]
            if len(hits) >= top_k or len(answer) < limit or limit >= MAX_LIMIT:
                return hits[:top_k]
            limit = min(limit * 4, MAX_LIMIT)  # Milvus's prefilter let others through

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
            parts = list(self._iter_rows(["raw"]))
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
                    search_params=_search_params(self.meta["index"], vectors.shape[1], limit),
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
            old, physical = self.physical, _physical_name(self.name)
            self._make_physical(physical, whitening.n_components)
            try:
                save_blob(self.client, physical, save_tensors(whitening.tensors()))
                self._copy(old, physical, whitening)
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
            self._catch_up(old, physical, whitening)
            self.client.drop_collection(old)
            drop_blob(self.client, old)

    def _seqs(self, physical: str) -> set[int]:
        return {int(r["seq"]) for rows in self._iter_rows([], physical=physical) for r in rows}

    def _copy(
        self,
        source: str,
        target: str,
        transform: VectorTransform,
        seqs: Sequence[int] | None = None,
    ) -> None:
        """Copy documents (all, or those ``seqs``) with their vectors prepared anew."""
        fields = ["seq", "doc_id", "text", "metadata", "raw"]
        if seqs is None:
            batches: Iterator[list[dict[str, Any]]] = self._iter_rows(fields[1:], physical=source)
        else:
            wanted = sorted(seqs)
            batches = (
                self.client.query(
                    source, filter=f"seq in {wanted[i : i + _IN_CHUNK]}", output_fields=fields
                )
                for i in range(0, len(wanted), _IN_CHUNK)
            )
        for rows in batches:
            if not rows:
                continue
            raw = np.array([r["raw"] for r in rows], dtype=np.float32)
            for row, vector in zip(rows, prepare_vectors(raw, transform), strict=True):
                row["vector"] = vector.tolist()
            self.client.upsert(target, rows)

    def _catch_up(self, old: str, new: str, transform: VectorTransform) -> None:
        """Make ``new`` hold the documents ``old`` holds now (writes of other replicas)."""
        before, after = self._seqs(old), self._seqs(new)
        if missing := before - after:
            self._copy(old, new, transform, sorted(missing))
        if extra := sorted(after - before):
            for i in range(0, len(extra), _IN_CHUNK):
                self.client.delete(new, ids=extra[i : i + _IN_CHUNK])

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


def _storage_error(what: str, exc: MilvusException) -> StorageError:
    return StorageError(
        f"{what} failed: Milvus answered {exc.code}: {exc.message}. Check the Milvus server "
        "(SENTSIM_MILVUS_URI), then retry: every write here is safe to repeat"
    )


class MilvusCatalog:
    """The collections of the ``milvus`` backend: the registry of a Milvus Lite file or server
    (see ``CollectionCatalog``). ``shared``: other replicas may change it at any time.

    Args:
        uri: A Milvus Lite file path (its folder is created) or a server URL.
        token: The server's token, if it needs one.
    """

    shared = True

    def __init__(self, uri: str, token: str | None = None) -> None:
        self.uri, self.token = uri, token
        self.read_only: str | None = None
        self._client: MilvusClient | None = None

    @property
    def client(self) -> MilvusClient:
        """The connection (``start`` opens it)."""
        if self._client is None:
            raise NotFoundError("the Milvus catalog is not started")
        return self._client

    def start(self) -> None:
        """Connect and create the registry if missing.

        Raises:
            StorageError: Milvus cannot be reached or refused (the message says which).
        """
        if self._client is not None:
            return
        is_file = "://" not in self.uri
        if is_file:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._client = MilvusClient(uri=self.uri, token=self.token or "")
            ensure_bookkeeping(self._client)
        except MilvusException as exc:
            raise _storage_error("connecting to Milvus", exc) from None
        except Exception as exc:  # grpc and Milvus Lite start-up failures
            where = "the Milvus Lite file" if is_file else "the Milvus server"
            raise StorageError(
                f"connecting to {where} (SENTSIM_MILVUS_URI) failed ({type(exc).__name__}); "
                "check it is reachable (a Milvus Lite file opens in one process only)"
            ) from None

    def names(self) -> list[str]:
        """The registered collections, sorted."""
        return sorted(self._call("listing collections", registered, self.client))

    def revision(self, name: str) -> str | None:
        """The physical collection ``name`` points at (new on every re-create and refit)."""
        found = self._call(f"reading collection {name!r}", lookup, self.client, name)
        return None if found is None else found[0]

    def open(self, name: str, resolve: ResolveTransform) -> MilvusCollection:
        """``MilvusCollection.open`` with the named transform ``resolve`` returns, if any."""
        found = self._call(f"opening collection {name!r}", lookup, self.client, name)
        if found is None:
            raise NotFoundError(f"collection {name!r} does not exist")
        transform = resolve(found[1])
        return self._call(
            f"opening collection {name!r}",
            MilvusCollection._registered,  # noqa: SLF001 - the row just read, not read again
            self.client,
            *found,
            transform,
        )

    def create(self, meta: dict[str, Any], transform: VectorTransform | None) -> MilvusCollection:
        """``MilvusCollection.create``."""
        return MilvusCollection.create(self.client, meta, transform)

    def remove(self, name: str) -> None:
        """Unregister a collection that could not be opened and drop its data."""
        found = self._call(f"deleting collection {name!r}", lookup, self.client, name)
        if found is None:
            return
        self._call(f"deleting collection {name!r}", unregister, self.client, name)
        self._call(f"deleting collection {name!r}", self.client.drop_collection, found[0])
        self._call(f"deleting collection {name!r}", drop_blob, self.client, found[0])

    def close(self) -> None:
        """Close the connection."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @staticmethod
    def _call(what: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except MilvusException as exc:
            raise _storage_error(what, exc) from None
