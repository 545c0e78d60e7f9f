"""DocumentStore: one collection's documents, metadata and raw vectors in SQLite.

The store is the source of truth: a write is acknowledged only after its transaction commits
(WAL journal, ``synchronous=FULL``, so a committed write survives a crash or power loss). The
FAISS index beside it is a cache rebuilt or topped up from here. Each document has a string
``id`` chosen by the client and an integer ``seq`` (its FAISS id); replacing a document gives
it a new ``seq``, so a stale index entry can never point at new content.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import InputValidationError
from app.core.types import Embeddings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL
);
"""

#: Metadata filter values are compared with SQL equality, so they must be JSON scalars.
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Document:
    """A stored document.

    Attributes:
        id: The client's id.
        text: The sentence or passage.
        metadata: A JSON object.
        seq: Its int64 key in the FAISS index.
    """

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    seq: int = -1


class DocumentStore:
    """SQLite file of one collection. Thread-safe: one connection behind a lock.

    Args:
        path: The SQLite file (created with its tables if missing, unless ``read_only``).
        read_only: Open for reading only, for a folder that cannot be written: SQLite's
            ``mode=ro``, or, where the WAL's shared-memory file cannot be made either,
            ``immutable=1`` (the last checkpointed state).

    Raises:
        sqlite3.Error: The file cannot be opened (or, read-only, does not exist).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        if read_only:
            self._db = self._connect_read_only()
            return
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri()
        error: sqlite3.Error | None = None
        for query in ("?mode=ro", "?mode=ro&immutable=1"):
            db = sqlite3.connect(uri + query, uri=True, check_same_thread=False)
            try:
                db.execute("SELECT COUNT(*) FROM meta").fetchone()
            except sqlite3.Error as exc:
                db.close()
                error = exc
            else:
                return db
        assert error is not None
        raise error

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def get_meta(self) -> dict[str, Any]:
        """The collection's settings (``meta`` table), JSON-decoded."""
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def set_meta(self, **values: Any) -> None:
        """Store settings (JSON-encoded), in one transaction."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def count(self) -> int:
        """Number of documents."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def upsert(
        self, documents: Sequence[Document], vectors: Embeddings
    ) -> tuple[list[int], list[int]]:
        """Insert or replace documents with their raw float32 (n, d) vectors, atomically.

        Returns:
            ``(new_seqs, replaced_seqs)``: the seq of each document, in order, and the seqs of
            the older versions that were replaced (to drop from the index).
        """
        blobs = [np.ascontiguousarray(v, dtype=np.float32).tobytes() for v in vectors]
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            ids = [d.id for d in documents]
            replaced = self._seqs_of(ids)
            self._db.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in ids])
            seqs = []
            for doc, blob in zip(documents, blobs, strict=True):
                cursor = self._db.execute(
                    "INSERT INTO documents (id, text, metadata, vector) VALUES (?, ?, ?, ?)",
                    (doc.id, doc.text, json.dumps(doc.metadata), blob),
                )
                seqs.append(int(cursor.lastrowid or 0))
        return seqs, replaced

    def _seqs_of(self, ids: Sequence[str]) -> list[int]:
        seqs: list[int] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT seq FROM documents WHERE id IN ({marks})", chunk)
            seqs += [int(r[0]) for r in rows]
        return seqs

    def delete(self, doc_id: str) -> int | None:
        """Delete a document; return its seq, or ``None`` if it did not exist."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT seq FROM documents WHERE id = ?", (doc_id,)).fetchone()
            if row is None:
                return None
            self._db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return int(row[0])

    def get(self, doc_id: str) -> Document | None:
        """The document with this id, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, text, metadata, seq FROM documents WHERE id = ?", (doc_id,)
            ).fetchone()
        return None if row is None else Document(row[0], row[1], _load_metadata(row[2]), row[3])

    def get_by_seqs(self, seqs: Sequence[int]) -> dict[int, Document]:
        """The documents with these seqs (missing ones are left out), keyed by seq."""
        found: dict[int, Document] = {}
        with self._lock:
            for chunk in _chunks(seqs):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT id, text, metadata, seq FROM documents WHERE seq IN ({marks})", chunk
                )
                for r in rows:
                    found[int(r[3])] = Document(r[0], r[1], _load_metadata(r[2]), int(r[3]))
        return found

    def ids_by_seqs(self, seqs: Sequence[int] | np.ndarray) -> dict[int, str]:
        """The ids of the documents with these seqs (missing ones left out), keyed by seq,
        without reading their text or metadata."""
        found: dict[int, str] = {}
        with self._lock:
            for chunk in _chunks(seqs):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT seq, id FROM documents WHERE seq IN ({marks})", chunk
                )
                found.update((int(seq), str(doc_id)) for seq, doc_id in rows)
        return found

    def seqs(self) -> np.ndarray:
        """All seqs, int64 (n,)."""
        with self._lock:
            rows = self._db.execute("SELECT seq FROM documents ORDER BY seq").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def filter_seqs(self, filter: dict[str, Scalar]) -> np.ndarray:
        """Seqs of the documents whose metadata equals ``filter`` on every key, int64 (m,).

        Keys are whole top-level keys (dots, brackets, quotes and any other characters
        included); values match by JSON type and value (``1`` matches ``1`` and ``1.0``, not
        ``"1"`` or ``true``).

        Raises:
            InputValidationError: A filter value is not a JSON scalar.
        """
        clauses: list[str] = []
        params: list[Any] = []
        for key, value in filter.items():
            if isinstance(value, dict | list):
                raise InputValidationError(f"filter value of {key!r} must be a scalar")
            if '"' in key:  # a JSON path cannot name it: look the key up among all keys
                clause, args = _filter_by_each(key, value)
            else:  # a quoted path label, compared with the stored (ASCII-escaped) JSON key
                clause, args = _filter_by_path("$." + json.dumps(key), value)
            clauses.append(clause)
            params += args
        sql = "SELECT seq FROM documents" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def sizes(self, seqs: Sequence[int]) -> dict[int, int]:
        """Bytes of text (UTF-8) and metadata (JSON) of each of these documents, keyed by seq
        (missing ones left out), read without loading them."""
        found: dict[int, int] = {}
        with self._lock:
            for chunk in _chunks(seqs):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT seq, length(CAST(text AS BLOB)) + length(metadata) FROM documents "
                    f"WHERE seq IN ({marks})",
                    chunk,
                )
                found.update((int(seq), int(size)) for seq, size in rows)
        return found

    def iter_vectors(
        self, batch: int = 8192, seqs: Sequence[int] | np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, Embeddings]]:
        """Yield ``(seqs int64 (b,), raw vectors float32 (b, d))`` batches, all or these seqs."""
        if seqs is not None:
            for chunk in _chunks(seqs, batch):
                marks = ",".join("?" * len(chunk))
                with self._lock:
                    rows = self._db.execute(
                        f"SELECT seq, vector FROM documents WHERE seq IN ({marks}) ORDER BY seq",
                        chunk,
                    ).fetchall()
                yield self._unpack(rows)
            return
        last = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT seq, vector FROM documents WHERE seq > ? ORDER BY seq LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            last = int(rows[-1][0])
            yield self._unpack(rows)

    @staticmethod
    def _unpack(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, Embeddings]:
        seqs = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        return seqs, vectors


def _load_metadata(text: str) -> dict[str, Any]:
    """Stored metadata JSON as a dict. A lone surrogate (``\\ud800`` in the JSON; refused at
    the API since, but stored by earlier versions) comes back as its escape text, so that no
    response that includes it fails to encode as UTF-8."""
    metadata: dict[str, Any] = json.loads(text)
    if "\\ud" in text.lower():  # JSON escapes of UTF-16 surrogates, paired or not
        metadata = _escape_surrogates(metadata)
    return metadata


def _escape_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_surrogates(v) for v in value]
    return value


def _filter_by_path(path: str, value: Scalar) -> tuple[str, list[Any]]:
    """``metadata`` at ``path`` equals ``value`` (the fast way: no scan of every key)."""
    if value is None:
        return "json_type(metadata, ?) = 'null'", [path]
    if isinstance(value, bool):
        return "json_type(metadata, ?) = ?", [path, "true" if value else "false"]
    if isinstance(value, int | float):  # json_extract reads true as 1: check the type too
        # (after the value: SQLite stops at the first false term, so most rows parse once)
        return "json_extract(metadata, ?) = ? AND json_type(metadata, ?) IN ('integer', 'real')", [
            path,
            value,
            path,
        ]
    return "json_extract(metadata, ?) = ?", [path, value]


def _filter_by_each(key: str, value: Scalar) -> tuple[str, list[Any]]:
    """``metadata`` has top-level ``key`` equal to ``value``, for keys no path can name."""
    test, args = "type = 'text' AND value = ?", [value]
    if value is None or isinstance(value, bool):
        test, args = "type = ?", ["null" if value is None else str(value).lower()]
    elif isinstance(value, int | float):
        test = "type IN ('integer', 'real') AND value = ?"
    return f"EXISTS (SELECT 1 FROM json_each(metadata) WHERE key = ? AND {test})", [key, *args]


def _chunks(seqs: Sequence[int] | np.ndarray, size: int = 500) -> Iterator[list[int]]:
    """``seqs`` as lists of at most ``size`` ints (SQLite bounds the parameters per query)."""
    for start in range(0, len(seqs), size):
        yield [int(s) for s in seqs[start : start + size]]
