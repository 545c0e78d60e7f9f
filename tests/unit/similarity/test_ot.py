"""WMD / WRD against an independent LP solver, their properties and the pruned top-k."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from app.core.errors import DimensionMismatchError, EmptyInputError, InputValidationError
from app.similarity.ot import (
    IdfWeights,
    cost_matrix,
    distance_to_score,
    norm_weights,
    relaxed_distance,
    top_k_transport,
    transport_distance,
    word_centroid_distance,
    word_movers_distance,
    word_rotators_distance,
)


def _tokens(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    return (rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=(n, 1))).astype(np.float32)


def _linprog_transport(p: np.ndarray, q: np.ndarray, M: np.ndarray) -> float:
    """The transport LP written out for scipy's HiGHS: min <gamma, M>, gamma 1 = p, gamma' 1 = q
    (the last column constraint is implied by the others and left out)."""
    m, n = M.shape
    rows = np.zeros((m, m * n))
    cols = np.zeros((n, m * n))
    for i in range(m):
        rows[i, i * n : (i + 1) * n] = 1
    for j in range(n):
        cols[j, j::n] = 1
    result = linprog(
        M.ravel(),
        A_eq=np.vstack([rows, cols[:-1]]),
        b_eq=np.concatenate([p, q[:-1]]),
        bounds=(0, None),
        method="highs",
    )
    assert result.success
    return float(result.fun)


@pytest.mark.parametrize("seed", range(8))
def test_wmd_and_wrd_equal_the_linprog_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = _tokens(rng, int(rng.integers(2, 9))), _tokens(rng, int(rng.integers(2, 9)))
    # WMD: Euclidean cost, uniform weights; and with given weights.
    M = np.array([[np.linalg.norm(x - y) for y in b] for x in a], dtype=np.float64)
    uniform = _linprog_transport(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), M)
    assert word_movers_distance(a, b).distance == pytest.approx(uniform, abs=1e-6)
    wa, wb = rng.uniform(0.1, 1, len(a)), rng.uniform(0.1, 1, len(b))
    weighted = _linprog_transport(wa / wa.sum(), wb / wb.sum(), M)
    assert word_movers_distance(a, b, wa, wb).distance == pytest.approx(weighted, abs=1e-6)
    # WRD: cosine cost, norm weights.
    C = np.array(
        [[1 - x @ y / np.linalg.norm(x) / np.linalg.norm(y) for y in b] for x in a],
        dtype=np.float64,
    )
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    reference = _linprog_transport(na / na.sum(), nb / nb.sum(), C)
    assert word_rotators_distance(a, b).distance == pytest.approx(reference, abs=1e-6)


def test_plan_is_a_transport_plan() -> None:
    rng = np.random.default_rng(0)
    a, b = _tokens(rng, 5), _tokens(rng, 3)
    result = word_rotators_distance(a, b)
    np.testing.assert_allclose(result.plan.sum(1), norm_weights(a), atol=1e-9)
    np.testing.assert_allclose(result.plan.sum(0), norm_weights(b), atol=1e-9)
    assert (result.plan >= 0).all()
    assert result.distance == pytest.approx((result.plan * cost_matrix(a, b, "cosine")).sum())


@pytest.mark.parametrize("method", ["wmd", "wrd"])
def test_identity_symmetry_and_range(method: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(10):
        a, b = _tokens(rng, 6), _tokens(rng, 4)
        assert transport_distance(a, a, method).distance == pytest.approx(0, abs=1e-6)
        ab = transport_distance(a, b, method).distance
        assert ab == pytest.approx(transport_distance(b, a, method).distance, abs=1e-9)
        if method == "wrd":
            assert 0 <= ab <= 2
            assert -1 <= distance_to_score(ab, "wrd") <= 1
        else:
            assert 0 < distance_to_score(ab, "wmd") <= 1


@pytest.mark.parametrize("method", ["wmd", "wrd"])
def test_lower_bounds_never_exceed_the_exact_distance(method: str) -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        a, b = _tokens(rng, int(rng.integers(1, 10))), _tokens(rng, int(rng.integers(1, 10)))
        exact = transport_distance(a, b, method).distance
        assert word_centroid_distance(a, b, method) <= exact + 1e-9
        assert relaxed_distance(a, b, method) <= exact + 1e-9


@pytest.mark.parametrize("method", ["wmd", "wrd"])
def test_pruned_top_k_equals_brute_force(method: str) -> None:
    rng = np.random.default_rng(3)
    query = _tokens(rng, 6)
    candidates = [_tokens(rng, int(rng.integers(2, 12))) for _ in range(60)]
    brute = sorted(
        (transport_distance(query, c, method).distance, i) for i, c in enumerate(candidates)
    )
    for k in (1, 5, 20):
        pruned = top_k_transport(query, candidates, k, method)
        assert [i for i, _ in pruned] == [i for _, i in brute[:k]]
        np.testing.assert_allclose([d for _, d in pruned], [d for d, _ in brute[:k]], atol=1e-9)


def test_sinkhorn_approximates_exact() -> None:
    rng = np.random.default_rng(4)
    a, b = _tokens(rng, 7), _tokens(rng, 5)
    exact = word_rotators_distance(a, b).distance
    approx = word_rotators_distance(a, b, solver="sinkhorn", reg=0.01).distance
    assert exact <= approx + 1e-6 and approx == pytest.approx(exact, rel=0.1)


def test_idf_weights() -> None:
    idf = IdfWeights().fit([["a", "dog"], ["a", "cat"], ["a", "cat", "sat"]])
    assert idf.idf("a") < idf.idf("cat") < idf.idf("dog") == idf.idf("sat") < idf.idf("unseen")
    w = idf.weights(["a", "dog"])
    assert w.sum() == pytest.approx(1) and w[0] < w[1]
    assert idf.weights([]).shape == (0,)


def test_bad_input() -> None:
    a = np.ones((3, 4))
    with pytest.raises(DimensionMismatchError):
        word_movers_distance(a, np.ones((2, 5)))
    with pytest.raises(EmptyInputError):
        word_rotators_distance(a, np.ones((0, 4)))
    with pytest.raises(InputValidationError):
        word_movers_distance(a, a, a=[1, -1, 1])
    with pytest.raises(InputValidationError):
        transport_distance(a, a, "emd")  # type: ignore[arg-type]
