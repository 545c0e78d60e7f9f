"""Collection (SQLite + FAISS) through the VectorCollection protocol the services use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.errors import NotFoundError
from app.index.base import VectorCollection
from app.index.collection import Collection
from app.index.store import Document


def _collection(tmp_path: Path) -> VectorCollection:
    meta = {"name": "faq", "index": "flat", "dimension": 4, "model": "m", "pooling": "mean"}
    return Collection.create(tmp_path, meta)


def test_raw_vectors_come_back_in_batches_as_stored(tmp_path: Path) -> None:
    collection = _collection(tmp_path)
    raw = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    collection.upsert([Document(f"d{i}", f"text {i}") for i in range(10)], raw)
    with collection.exclusive("reading"):
        batches = list(collection.iter_raw_vectors(batch=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), raw)  # raw, not normalised


def test_search_through_the_protocol_matches_brute_force(tmp_path: Path) -> None:
    collection = _collection(tmp_path)
    raw = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    collection.upsert([Document(f"d{i}", f"text {i}") for i in range(20)], raw)
    query = raw[:1] + 0.1
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    expected = np.argsort(-(unit @ (query[0] / np.linalg.norm(query[0]))))[:5]
    hits = collection.search(query, 5)[0]
    assert [h.id for h in hits] == [f"d{i}" for i in expected]
    collection.destroy()
    assert collection.closed
    with pytest.raises(NotFoundError):
        collection.count()
