"""Closed-form Gaussian distances against independent references (scipy sqrtm, Monte-Carlo)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg, stats

from app.core.errors import InputValidationError
from app.similarity.gaussian import Gaussian, gaussian_distances, wasserstein2


def _random_gaussian(rng: np.random.Generator, d: int, shift: float = 0.0) -> Gaussian:
    a = rng.normal(size=(d, d))
    return Gaussian(rng.normal(size=d) + shift, a @ a.T / d + 0.2 * np.eye(d), 1000)


def test_w2_equals_the_sqrtm_formula() -> None:
    rng = np.random.default_rng(0)
    g1, g2 = _random_gaussian(rng, 6), _random_gaussian(rng, 6, shift=1.0)
    root = linalg.sqrtm(g2.cov)
    cross = np.real(linalg.sqrtm(root @ g1.cov @ root))
    expected = np.sum((g1.mean - g2.mean) ** 2) + np.trace(g1.cov + g2.cov - 2 * cross)
    assert wasserstein2(g1, g2) == pytest.approx(np.sqrt(expected), rel=1e-8)
    assert wasserstein2(g1, g2) == pytest.approx(wasserstein2(g2, g1), rel=1e-8)


def test_kl_and_bhattacharyya_match_monte_carlo_estimates() -> None:
    rng = np.random.default_rng(1)
    g1, g2 = _random_gaussian(rng, 3), _random_gaussian(rng, 3, shift=0.5)
    p1 = stats.multivariate_normal(g1.mean, g1.cov)
    p2 = stats.multivariate_normal(g2.mean, g2.cov)
    x = p1.rvs(size=400_000, random_state=rng)
    log_ratio = p2.logpdf(x) - p1.logpdf(x)
    kl_mc = -np.mean(log_ratio)  # E_1[log p1 - log p2]
    bhattacharyya_mc = -np.log(np.mean(np.exp(0.5 * log_ratio)))  # -ln E_1[sqrt(p2 / p1)]
    got = gaussian_distances(g1, g2, ridge=0.0)
    assert got.kl == pytest.approx(kl_mc, rel=0.02)
    assert got.bhattacharyya == pytest.approx(bhattacharyya_mc, rel=0.02)
    assert got.ridge == 0.0


def test_equal_covariances_reduce_to_mean_distances() -> None:
    rng = np.random.default_rng(2)
    g1 = _random_gaussian(rng, 4)
    g2 = Gaussian(g1.mean + np.array([1.0, -2.0, 0.5, 0.0]), g1.cov, 10)
    diff = g2.mean - g1.mean
    mahalanobis2 = diff @ np.linalg.solve(g1.cov, diff)
    got = gaussian_distances(g1, g2, ridge=0.0)
    assert got.w2 == pytest.approx(np.linalg.norm(diff), rel=1e-6)
    assert got.kl == pytest.approx(mahalanobis2 / 2, rel=1e-8)
    assert got.bhattacharyya == pytest.approx(mahalanobis2 / 8, rel=1e-8)


def test_identical_sets_are_at_distance_zero_and_properties_hold() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(200, 5))
    g = Gaussian.fit(vectors)
    same = gaussian_distances(g, Gaussian.fit(vectors))
    assert same.w2 == pytest.approx(0.0, abs=1e-6)
    assert same.kl == pytest.approx(0.0, abs=1e-9)
    assert same.bhattacharyya == pytest.approx(0.0, abs=1e-9)
    other = Gaussian.fit(rng.normal(size=(200, 5)) * 2 + 1)
    forth, back = gaussian_distances(g, other), gaussian_distances(other, g)
    assert forth.bhattacharyya == pytest.approx(back.bhattacharyya, rel=1e-9)
    assert forth.kl != pytest.approx(back.kl, rel=1e-3)  # KL is not symmetric
    assert min(forth.w2, forth.kl, forth.bhattacharyya) > 0


def test_fit_matches_numpy_and_rank_deficient_sets_stay_finite() -> None:
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    g = Gaussian.fit(vectors)
    np.testing.assert_allclose(g.mean, vectors.mean(0), rtol=1e-6)
    np.testing.assert_allclose(g.cov, np.cov(vectors.T.astype(np.float64)), rtol=1e-10)
    few = rng.normal(size=(5, 8))  # rank 4 < 8, as fewer vectors than dimensions
    few[:, 2] = 0.3  # a constant dimension, as the model's
    got = gaussian_distances(Gaussian.fit(few), g)
    assert np.isfinite([got.w2, got.kl, got.bhattacharyya]).all() and got.ridge > 0
    one = Gaussian.fit(few[:1])  # one vector: zero covariance
    assert np.isfinite(gaussian_distances(one, one).kl)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((0, 3)), np.zeros(3), np.array([[1.0, np.nan]]), np.array([[np.inf, 1.0]])],
)
def test_bad_vectors_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(InputValidationError):
        Gaussian.fit(bad)


def test_dimension_mismatch_and_negative_ridge_are_refused() -> None:
    a, b = Gaussian.fit(np.eye(3)), Gaussian.fit(np.eye(4))
    with pytest.raises(InputValidationError, match="dimensions"):
        gaussian_distances(a, b)
    with pytest.raises(InputValidationError, match="ridge"):
        gaussian_distances(a, a, ridge=-1.0)


def test_fit_chunks_equals_fit_on_all_rows() -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(300, 6)) * 3 + 10  # an offset the running sums must survive
    whole = Gaussian.fit(vectors)
    chunked = Gaussian.fit_chunks(vectors[i : i + 64] for i in range(0, 300, 64))
    assert chunked.n == 300
    np.testing.assert_allclose(chunked.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(chunked.cov, whole.cov, rtol=1e-9, atol=1e-12)
    with pytest.raises(InputValidationError, match="no vectors"):
        Gaussian.fit_chunks([])
