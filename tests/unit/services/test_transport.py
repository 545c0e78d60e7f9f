"""TokenCache bounds and the alignment of a transport plan."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import InputValidationError
from app.services.transport import TokenCache, alignment, check_transport_method
from app.similarity.ot import word_rotators_distance


def test_cache_round_trip_and_lru_bound() -> None:
    tokens = np.arange(4 * 8, dtype=np.float32).reshape(4, 8) / 7
    cache = TokenCache(max_bytes=3 * tokens.astype(np.float16).nbytes)
    for seq in range(4):
        cache.put(("c", seq), tokens)
    assert cache.nbytes <= cache.max_bytes
    assert cache.get(("c", 0)) is None  # the least recently used was evicted
    got = cache.get(("c", 3))
    assert got is not None and got.dtype == np.float32
    np.testing.assert_allclose(got, tokens, rtol=1e-3)
    assert (cache.hits, cache.misses) == (1, 1)


def test_disabled_cache_stores_nothing() -> None:
    cache = TokenCache(0)
    cache.put(("c", 1), np.ones((2, 2), np.float32))
    assert cache.get(("c", 1)) is None


def test_alignment_lists_the_heaviest_pairs() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[0.0, 2.0], [2.0, 0.0]])  # equal norms: a one-to-one plan
    pairs = alignment(word_rotators_distance(a, b), ["x", "y"], ["Y", "X"])
    assert {(p["source"], p["target"]) for p in pairs} == {("x", "X"), ("y", "Y")}
    assert {(p["source_index"], p["target_index"]) for p in pairs} == {(0, 1), (1, 0)}
    assert sum(p["mass"] for p in pairs) == pytest.approx(1.0)
    assert pairs[0]["mass"] >= pairs[1]["mass"]


def test_check_measure() -> None:
    assert check_transport_method("wrd") == "wrd" and check_transport_method("wmd") == "wmd"
    with pytest.raises(InputValidationError):
        check_transport_method("cosine")
