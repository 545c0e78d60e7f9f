"""Clusters and duplicates from kNN lists, against brute force and sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest

from app.similarity import clustering
from app.similarity.clustering import (
    duplicate_pairs,
    infomap_clusters,
    threshold_clusters,
)


def _planted(groups: list[int], d: int = 32, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """Unit vectors around one random direction per group (sizes ``groups``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for size in groups:
        centre = rng.normal(size=d)
        rows.append(centre + noise * np.linalg.norm(centre) * rng.normal(size=(size, d)) / d**0.5)
    x = np.concatenate(rows).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force k nearest others of each row."""
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(sims, order, 1).astype(np.float32)


def test_threshold_clusters_match_sentence_transformers_community_detection() -> None:
    from sentence_transformers.util import community_detection

    x = _planted([9, 7, 5, 3, 1, 1], noise=0.6, seed=1)
    neighbors, scores = _knn(x, k=len(x) - 1)  # every pair: the same input ST sees
    for threshold, min_size in ((0.75, 2), (0.6, 3), (0.8, 2), (0.85, 2)):
        ours = threshold_clusters(neighbors, scores, x, threshold=threshold, min_size=min_size)
        theirs = community_detection(x, threshold=threshold, min_community_size=min_size)
        assert {frozenset(c.tolist()) for c in ours.clusters} == {frozenset(c) for c in theirs}
        assert ours.unclustered == len(x) - sum(len(c) for c in theirs)


def test_representative_is_the_member_nearest_the_mean() -> None:
    x = _planted([6, 4], noise=0.3)
    neighbors, scores = _knn(x, k=9)
    result = threshold_clusters(neighbors, scores, x, threshold=0.5)
    for members, representative in zip(result.clusters, result.representatives, strict=True):
        centre = x[members].mean(axis=0)
        assert representative == members[np.argmax(x[members] @ centre)]


@pytest.mark.skipif(not clustering.infomap_available(), reason="infomap not installed")
def test_infomap_recovers_planted_groups_without_being_told_how_many() -> None:
    sizes = [8, 6, 5, 4, 2, 1]
    x = _planted(sizes, noise=0.2, seed=3)
    neighbors, scores = _knn(x, k=10)
    result = infomap_clusters(neighbors, scores, x, threshold=0.5, min_size=2)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    found = {frozenset(c.tolist()) for c in result.clusters}
    assert found == {frozenset(np.flatnonzero(truth == g).tolist()) for g in range(5)}
    assert result.unclustered == 1 and result.codelength is not None and result.codelength > 0
    again = infomap_clusters(neighbors, scores, x, threshold=0.5, min_size=2)
    assert [c.tolist() for c in again.clusters] == [c.tolist() for c in result.clusters]


def test_infomap_missing_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clustering, "infomap_available", lambda: False)
    x = _planted([3, 3])
    with pytest.raises(ModuleNotFoundError, match="pip install"):
        infomap_clusters(*_knn(x, 3), x)


def test_duplicate_pairs_equal_brute_force_when_k_covers_everyone() -> None:
    x = _planted([5, 4, 3], noise=0.4, seed=2)
    sims = x @ x.T
    for threshold in (0.8, 0.9, 0.95):
        pairs, scores = duplicate_pairs(*_knn(x, len(x) - 1), threshold=threshold)
        i, j = np.triu_indices(len(x), 1)
        keep = sims[i, j] >= threshold
        assert {tuple(p) for p in pairs.tolist()} == set(
            zip(i[keep].tolist(), j[keep].tolist(), strict=True)
        )
        np.testing.assert_allclose(scores, sims[pairs[:, 0], pairs[:, 1]], rtol=1e-6)
        assert np.all(np.diff(scores) <= 0) and np.all(pairs[:, 0] < pairs[:, 1])


def test_duplicate_pairs_from_short_lists_are_the_subset_they_can_see() -> None:
    x = _planted([6, 6], noise=0.2)
    full, _ = duplicate_pairs(*_knn(x, len(x) - 1), threshold=0.9)
    short, _ = duplicate_pairs(*_knn(x, 2), threshold=0.9)
    assert {tuple(p) for p in short.tolist()} <= {tuple(p) for p in full.tolist()}
    assert len(short) > 0
