"""FaissIndex against brute-force numpy search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.errors import DimensionMismatchError, InputValidationError
from app.index.faiss_index import FaissIndex, parse_spec


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.arange(100, 600, dtype=np.int64), _unit(500, 24, 0), _unit(20, 24, 1)


def _brute(
    ids: np.ndarray, xb: np.ndarray, xq: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    scores = xq @ xb.T
    order = np.argsort(-scores, axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), ids[order]


def test_flat_equals_brute_force(data) -> None:
    ids, xb, xq = data
    D, I = FaissIndex.build(24, "flat", ids, xb).search(xq, 10)  # noqa: E741
    bD, bI = _brute(ids, xb, xq, 10)
    np.testing.assert_array_equal(I, bI)
    np.testing.assert_allclose(D, bD, atol=1e-5)


def test_filter_equals_brute_force_on_the_allowed_subset(data) -> None:
    ids, xb, xq = data
    allowed = ids[::7]
    for spec in ("flat", "hnsw", "IVF8,Flat"):
        _, I = FaissIndex.build(24, spec, ids, xb).search(xq, 5, allowed)  # noqa: E741
        _, bI = _brute(allowed, xb[::7], xq, 5)
        np.testing.assert_array_equal(I, bI, err_msg=spec)


def test_hnsw_recall(data) -> None:
    ids, xb, xq = data
    _, I = FaissIndex.build(24, "hnsw", ids, xb).search(xq, 10)  # noqa: E741
    _, bI = _brute(ids, xb, xq, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, bI, strict=True)])
    assert recall >= 0.95


def test_untrainable_spec_falls_back_to_exact(data) -> None:
    ids, xb, xq = data
    index = FaissIndex.build(24, "IVF1024,Flat", ids[:50], xb[:50])  # 50 points, 1024 lists
    assert index.exact_fallback and index.spec == "IVF1024,Flat"
    _, I = index.search(xq, 3)  # noqa: E741
    np.testing.assert_array_equal(I, _brute(ids[:50], xb[:50], xq, 3)[1])


def test_remove_and_ids(data) -> None:
    ids, xb, _ = data
    index = FaissIndex.build(24, "flat", ids, xb)
    assert index.remove(ids[:10]) and index.ntotal == 490
    assert set(index.ids()) == set(ids[10:].tolist())
    assert not FaissIndex.build(24, "hnsw", ids, xb).remove(ids[:1])  # HNSW cannot remove


def test_save_load_round_trip(tmp_path: Path, data) -> None:
    ids, xb, xq = data
    index = FaissIndex.build(24, "hnsw", ids, xb)
    index.save(tmp_path / "index.faiss")
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed away
    loaded = FaissIndex.load(tmp_path / "index.faiss", 24, "hnsw")
    assert loaded is not None and loaded.ntotal == 500
    np.testing.assert_array_equal(loaded.search(xq, 5)[1], index.search(xq, 5)[1])
    assert FaissIndex.load(tmp_path / "index.faiss", 32, "hnsw") is None  # other dimension
    (tmp_path / "bad.faiss").write_bytes(b"garbage")
    assert FaissIndex.load(tmp_path / "bad.faiss", 24, "flat") is None


def test_bad_input() -> None:
    with pytest.raises(InputValidationError, match="accepted: flat | hnsw"):
        parse_spec("NotAnIndex", 8)
    with pytest.raises(InputValidationError, match="not an accepted"):
        parse_spec("IDMap,Flat", 8)
    with pytest.raises(DimensionMismatchError):
        FaissIndex(8).add(np.arange(2), np.zeros((2, 4), np.float32))
