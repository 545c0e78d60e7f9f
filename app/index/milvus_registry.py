"""What the Milvus backend keeps beside the documents, in two Milvus collections of its own:

- ``sentsim_registry``: one row per collection — its name (primary key), the physical Milvus
  collection holding its documents, and its ``meta`` (JSON). Every process connected to the same
  Milvus reads the same registry; a row's ``physical`` changes when the collection is re-created
  or refitted, which is how replicas notice.
- ``sentsim_blobs``: byte strings too large for a JSON field (a collection's own whitening,
  ~1.8 MB at d=384), base64-encoded in rows of ``_CHUNK`` bytes, owned by a physical
  collection's name and deleted with it.

Both are read and written at Strong consistency (a write is seen by the next read, anywhere).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pymilvus import DataType, MilvusClient

REGISTRY = "sentsim_registry"
BLOBS = "sentsim_blobs"
STRONG = "Strong"
#: Bytes per blob row (base64: 60,000 characters, under Milvus's VARCHAR limit of 65,535).
_CHUNK = 45_000


def _ensure(
    client: MilvusClient, name: str, fields: list[tuple[str, DataType, dict[str, Any]]]
) -> None:
    """Create a bookkeeping collection if missing (with the vector field Milvus requires),
    and load it (Milvus releases collections when it restarts)."""
    if client.has_collection(name):
        client.load_collection(name)
        return
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    for field, kind, options in fields:
        schema.add_field(field, kind, **options)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
    params = client.prepare_index_params()
    params.add_index("unused", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=params, consistency_level=STRONG)


def ensure_bookkeeping(client: MilvusClient) -> None:
    """Create the registry and the blobs collections if missing."""
    _ensure(
        client,
        REGISTRY,
        [
            ("name", DataType.VARCHAR, {"is_primary": True, "max_length": 64}),
            ("physical", DataType.VARCHAR, {"max_length": 128}),
            ("meta", DataType.JSON, {}),
        ],
    )
    _ensure(
        client,
        BLOBS,
        [
            ("key", DataType.VARCHAR, {"is_primary": True, "max_length": 160}),
            ("owner", DataType.VARCHAR, {"max_length": 128}),
            ("data", DataType.VARCHAR, {"max_length": 65535}),
        ],
    )


def registered(client: MilvusClient) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every collection in the registry: name -> (physical collection, meta)."""
    rows = client.query(REGISTRY, filter="", output_fields=["name", "physical", "meta"])
    return {r["name"]: (r["physical"], dict(r["meta"])) for r in rows}


def lookup(client: MilvusClient, name: str) -> tuple[str, dict[str, Any]] | None:
    """One collection's (physical collection, meta), or ``None`` (a primary-key read)."""
    rows = client.get(REGISTRY, ids=[name], output_fields=["physical", "meta"])
    return (rows[0]["physical"], dict(rows[0]["meta"])) if rows else None


def register(client: MilvusClient, name: str, physical: str, meta: dict[str, Any]) -> None:
    """Point ``name`` at ``physical`` with ``meta`` (the switch point of creates and refits)."""
    client.upsert(REGISTRY, [{"name": name, "physical": physical, "meta": meta, "unused": [0, 0]}])


def unregister(client: MilvusClient, name: str) -> None:
    """Remove ``name`` from the registry (the switch point of a delete)."""
    client.delete(REGISTRY, ids=[name])


def save_blob(client: MilvusClient, owner: str, data: bytes) -> None:
    """Store ``data`` under ``owner`` (replacing nothing: owners are new physical names)."""
    rows = [
        {
            "key": f"{owner}/{i:06d}",
            "owner": owner,
            "data": base64.b64encode(data[start : start + _CHUNK]).decode(),
            "unused": [0.0, 0.0],
        }
        for i, start in enumerate(range(0, len(data), _CHUNK))
    ]
    for start in range(0, len(rows), 64):
        client.insert(BLOBS, rows[start : start + 64])


def load_blob(client: MilvusClient, owner: str) -> bytes | None:
    """The bytes stored under ``owner``, or ``None``."""
    rows = client.query(
        BLOBS, filter=f"owner == {json.dumps(owner)}", output_fields=["key", "data"]
    )
    if not rows:
        return None
    return b"".join(base64.b64decode(r["data"]) for r in sorted(rows, key=lambda r: r["key"]))


def drop_blob(client: MilvusClient, owner: str) -> None:
    """Delete what is stored under ``owner`` (nothing if none)."""
    client.delete(BLOBS, filter=f"owner == {json.dumps(owner)}")
