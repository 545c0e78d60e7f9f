"""The physical Milvus collections behind the ``milvus`` backend's collections: their names,
schema, index and search parameters, and the row copies a refit makes (``MilvusCollection``).

A physical collection (``sentsim_<name>_<id>``) holds, per document: ``seq`` (INT64 primary key,
random 63 bits: replicas assign keys without a shared counter), ``doc_id``, ``text``,
``metadata`` (JSON), ``raw`` (the encoder's float32 vector, for refits and reranks) and
``vector`` (the prepared one, indexed by inner product = cosine).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from app.core.errors import InputValidationError, StorageError
from app.index.base import VectorTransform, prepare_vectors
from app.index.faiss_index import HNSW_EF_SEARCH, parse_spec
from app.index.milvus_registry import STRONG

#: Milvus answers at most this many hits per query (its topk limit).
MAX_LIMIT = 16384
#: Rows read per request when iterating a collection.
BATCH = 4096
#: Seqs per ``seq in [...]`` filter.
IN_CHUNK = 1024
#: Milvus's code for "collection does not exist".
NO_COLLECTION = 100


def physical_name(name: str) -> str:
    """A Milvus collection name (letters, digits, underscores) for a collection name
    (``[a-z0-9_-]``), one-to-one, plus a random part so that a re-created one differs."""
    return f"sentsim_{name.replace('_', '_u').replace('-', '_d')}_{uuid.uuid4().hex[:8]}"


def index_params(client: MilvusClient, spec: str, dimension: int) -> Any:
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


def search_params(spec: str, dimension: int, limit: int) -> dict[str, Any]:
    factory = parse_spec(spec, dimension).factory
    if factory.startswith("HNSW"):
        return {"metric_type": "IP", "params": {"ef": max(HNSW_EF_SEARCH, limit)}}
    return {"metric_type": "IP"}


def make_physical(
    client: MilvusClient, physical: str, raw_dimension: int, dimension: int, spec: str
) -> None:
    """Create a physical collection: raw vectors of ``raw_dimension``, prepared ones of
    ``dimension`` indexed as ``spec`` (``flat``, ``hnsw``...)."""
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("seq", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("raw", DataType.FLOAT_VECTOR, dim=raw_dimension)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    client.create_collection(
        physical,
        schema=schema,
        index_params=index_params(client, spec, dimension),
        consistency_level=STRONG,
    )


def iter_rows(
    client: MilvusClient, physical: str, fields: list[str], batch: int = BATCH
) -> Iterator[list[dict[str, Any]]]:
    """Every row of a physical collection (``seq`` and ``fields``), ``batch`` rows at a time."""
    iterator = client.query_iterator(
        physical, batch_size=batch, filter="", output_fields=["seq", *fields]
    )
    try:
        while rows := iterator.next():
            yield rows
    finally:
        iterator.close()


def seqs_of(client: MilvusClient, physical: str) -> set[int]:
    """The primary keys a physical collection holds."""
    return {int(r["seq"]) for rows in iter_rows(client, physical, []) for r in rows}


def copy_rows(
    client: MilvusClient,
    source: str,
    target: str,
    transform: VectorTransform | None,
    seqs: Sequence[int] | None = None,
) -> None:
    """Copy documents (all, or those ``seqs``) with their vectors prepared anew."""
    fields = ["seq", "doc_id", "text", "metadata", "raw"]
    if seqs is None:
        batches: Iterator[list[dict[str, Any]]] = iter_rows(client, source, fields[1:])
    else:
        wanted = sorted(seqs)
        batches = (
            client.query(source, filter=f"seq in {wanted[i : i + IN_CHUNK]}", output_fields=fields)
            for i in range(0, len(wanted), IN_CHUNK)
        )
    for rows in batches:
        if not rows:
            continue
        raw = np.array([r["raw"] for r in rows], dtype=np.float32)
        for row, vector in zip(rows, prepare_vectors(raw, transform), strict=True):
            row["vector"] = vector.tolist()
        client.upsert(target, rows)


def catch_up(client: MilvusClient, old: str, new: str, transform: VectorTransform | None) -> None:
    """Make ``new`` hold the documents ``old`` holds now (writes of other replicas)."""
    before, after = seqs_of(client, old), seqs_of(client, new)
    if missing := before - after:
        copy_rows(client, old, new, transform, sorted(missing))
    if extra := sorted(after - before):
        for i in range(0, len(extra), IN_CHUNK):
            client.delete(new, ids=extra[i : i + IN_CHUNK])


def storage_error(what: str, exc: MilvusException) -> StorageError:
    """Milvus's code and message as a ``StorageError`` that says what to do."""
    return StorageError(
        f"{what} failed: Milvus answered {exc.code}: {exc.message}. Check the Milvus server "
        "(SENTSIM_MILVUS_URI), then retry: every write here is safe to repeat"
    )
