"""MilvusCollection: a ``VectorCollection`` kept in Milvus (a Milvus Lite file or a server).

Every collection is one Milvus collection ("physical", ``sentsim_<name>_<id>``) holding, per
document: ``seq`` (INT64 primary key, random 63 bits: replicas assign keys without a shared
counter), ``doc_id``, ``text``, ``metadata`` (JSON), ``raw`` (the encoder's float32 vector,
for refits and reranks) and ``vector`` (the prepared one, indexed by inner product = cosine).
A registry collection, ``sentsim_registry``, maps each name to its ``meta`` and its physical
collection, so that any process connected to the same Milvus sees the same collections.
Reads and writes are at Strong consistency (a process reads its own writes at once).

Crash-safety without transactions: a replaced document's new row is written before its old
row is deleted (a crash in between leaves both; ``get`` then answers the newest); a refit
builds a new physical collection and switches the registry to it (the switch point), then
drops the old one.

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
from typing import Any

import numpy as np
import numpy.typing as npt
from pymilvus import DataType, MilvusClient, MilvusException

from app.core.errors import (
    ConflictError,
    InputValidationError,
    NotFoundError,
    StorageError,
)
from app.core.types import Embeddings
from app.index.base import (
    CollectionBase,
    SearchHit,
    VectorTransform,
    knn_positions,
    prepare_vectors,
)
from app.index.faiss_index import HNSW_EF_SEARCH, parse_spec
from app.index.store import Document, Scalar

REGISTRY = "sentsim_registry"
#: Milvus answers at most this many hits per query (its topk limit).
MAX_LIMIT = 16384
#: Rows read per request when iterating a collection.
_BATCH = 4096
_STRONG = "Strong"


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


def _ensure_registry(client: MilvusClient) -> None:
    if client.has_collection(REGISTRY):
        return
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("name", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("physical", DataType.VARCHAR, max_length=128)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs a vector field
    params = client.prepare_index_params()
    params.add_index("unused", index_type="FLAT", metric_type="L2")
    client.create_collection(
        REGISTRY, schema=schema, index_params=params, consistency_level=_STRONG
    )


def registered(client: MilvusClient) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every collection in the registry: name -> (physical collection, meta)."""
    _ensure_registry(client)
    rows = client.query(REGISTRY, filter="", output_fields=["name", "physical", "meta"])
    return {r["name"]: (r["physical"], dict(r["meta"])) for r in rows}


def _register(client: MilvusClient, name: str, physical: str, meta: dict[str, Any]) -> None:
    row = {"name": name, "physical": physical, "meta": meta, "unused": [0.0, 0.0]}
    client.upsert(REGISTRY, [row])


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
            if name in registered(client):
                raise ConflictError(f"collection {name!r} already exists")
            made = cls(client, dict(meta), _physical_name(name), transform)
            made._make_physical(made.physical, made.vector_dimension)
            try:
                _register(client, name, made.physical, made.meta)
            except BaseException:
                client.drop_collection(made.physical)  # no orphan left behind
                raise
        except MilvusException as exc:
            raise _storage_error(f"creating collection {name!r}", exc) from None
        return made

    @classmethod
    def open(
        cls, client: MilvusClient, name: str, transform: VectorTransform | None = None
    ) -> MilvusCollection:
        """The registered collection ``name``.

        Raises:
            NotFoundError: No collection has this name.
        """
        found = registered(client).get(name)
        if found is None:
            raise NotFoundError(f"collection {name!r} does not exist")
        physical, meta = found
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
            consistency_level=_STRONG,
        )

    def failure(self, what: str, exc: BaseException) -> StorageError:
        """Milvus's code and message, and what to do."""
        assert isinstance(exc, MilvusException)
        return _storage_error(what, exc)

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

    def _iter_rows(self, fields: list[str], batch: int = _BATCH) -> Iterator[list[dict[str, Any]]]:
        iterator = self.client.query_iterator(
            self.physical, batch_size=batch, filter="", output_fields=["seq", *fields]
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
        for start in range(0, len(seqs), 1024):
            with self.exclusive(f"searching collection {self.name!r}"):
                if self.transform is not transform or self.physical != physical:
                    raise ConflictError(
                        f"collection {self.name!r} was refitted meanwhile; ask again"
                    )
                answers = self.client.search(
                    physical,
                    data=vectors[start : start + 1024].tolist(),
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

    def retransform(self, transform: VectorTransform, meta: dict[str, Any]) -> None:
        """Switch to another transform: a new physical collection with every document's
        vector prepared anew, then the registry switched to it (the switch point), then the
        old one dropped. A failure before the switch leaves the old transform in force.
        """
        with self.exclusive(f"refitting the transform of collection {self.name!r}", write=True):
            physical = _physical_name(self.name)
            self._make_physical(physical, transform.n_components)
            try:
                fields = ["doc_id", "text", "metadata", "raw"]
                for rows in self._iter_rows(fields):
                    raw = np.array([r["raw"] for r in rows], dtype=np.float32)
                    vectors = prepare_vectors(raw, transform)
                    for row, vector in zip(rows, vectors, strict=True):
                        row["vector"] = vector.tolist()
                    self.client.insert(physical, rows)
                merged = {**self.meta, **meta}
                _register(self.client, self.name, physical, merged)
            except BaseException:
                self.client.drop_collection(physical)
                raise
            old, self.physical, self.transform = self.physical, physical, transform
            self.meta = merged
            self.client.drop_collection(old)

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
            self.client.delete(REGISTRY, ids=[self.name])
            self.closed = True
            self.client.drop_collection(self.physical)


def _storage_error(what: str, exc: MilvusException) -> StorageError:
    return StorageError(
        f"{what} failed: Milvus answered {exc.code}: {exc.message}. Check the Milvus server "
        "(SENTSIM_MILVUS_URI), then retry: every write here is safe to repeat"
    )
