"""BERT-whitening against a numpy SVD reference, streaming, persistence and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import (
    ArtifactNotFoundError,
    DimensionMismatchError,
    EmptyInputError,
    InputValidationError,
    NotFittedError,
    TransformMismatchError,
)
from app.transforms.whitening import Whitening


@pytest.fixture
def vectors() -> np.ndarray:
    """Anisotropic float32 vectors (N=600, d=24): a shifted, strongly correlated cloud."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(24, 24)) * np.logspace(0, -2, 24)
    return (rng.normal(size=(600, 24)) @ mixing.T + 3.0).astype(np.float32)


def _svd_reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DESIGN.md §2 literally: mu, then U, S = svd(cov(X)) with numpy's SVD."""
    x = x.astype(np.float64)
    mu = x.mean(axis=0)
    sigma = (x - mu).T @ (x - mu) / len(x)
    u, s, _ = np.linalg.svd(sigma)
    return mu, u, s


def test_whitened_fit_corpus_has_zero_mean_and_identity_covariance(vectors: np.ndarray) -> None:
    y = Whitening().fit(vectors).transform(vectors).astype(np.float64)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.cov(y.T, bias=True), np.eye(24), atol=2e-3)


@pytest.mark.parametrize("k", [24, 10])
def test_whitening_equals_svd_reference(vectors: np.ndarray, k: int) -> None:
    mu, u, s = _svd_reference(vectors)
    expected = (vectors - mu) @ (u[:, :k] / np.sqrt(s[:k]))
    got = Whitening(k).fit(vectors).transform(vectors)
    assert got.shape == (600, k) and got.dtype == np.float32
    # Each column is defined up to sign: compare the sign-invariant Gram matrices, and the
    # columns' absolute correlations.
    np.testing.assert_allclose(got @ got.T, expected @ expected.T, rtol=1e-3, atol=2e-2)
    corr = np.abs(
        (got * expected).sum(0) / np.linalg.norm(got, axis=0) / np.linalg.norm(expected, axis=0)
    )
    np.testing.assert_allclose(corr, 1.0, atol=1e-4)


def test_beta_gamma_zero_is_the_pca_projection(vectors: np.ndarray) -> None:
    _, u, _ = _svd_reference(vectors)
    got = Whitening(5, beta=0.0, gamma=0.0).fit(vectors).transform(vectors)
    expected = vectors.astype(np.float64) @ u[:, :5]  # no centring, no scaling
    np.testing.assert_allclose(np.abs(got), np.abs(expected), rtol=1e-4, atol=1e-3)


def test_generalised_knobs_follow_the_formula(vectors: np.ndarray) -> None:
    mu, u, s = _svd_reference(vectors)
    beta, gamma, k = 0.5, 0.3, 8
    expected = (vectors - beta * mu) @ u[:, :k] @ np.diag(s[:k] ** (-gamma / 2))
    got = Whitening(k, beta=beta, gamma=gamma).fit(vectors).transform(vectors)
    np.testing.assert_allclose(np.abs(got), np.abs(expected), rtol=1e-3, atol=1e-3)


def test_streamed_fit_equals_in_memory_fit(vectors: np.ndarray) -> None:
    whole = Whitening(12).fit(vectors)
    streamed = Whitening(12).fit(vectors[i : i + 64] for i in range(0, len(vectors), 64))
    assert streamed.n_fitted == whole.n_fitted == 600
    assert whole.mean is not None and streamed.mean is not None
    np.testing.assert_allclose(streamed.mean, whole.mean, atol=1e-10)
    np.testing.assert_allclose(streamed.eigenvalues, whole.eigenvalues, rtol=1e-9, atol=1e-12)
    a, b = whole.transform(vectors), streamed.transform(vectors)
    np.testing.assert_allclose(np.abs(a), np.abs(b), atol=1e-4)


def test_save_load_round_trip_is_exact(tmp_path: Path, vectors: np.ndarray) -> None:
    fitted = Whitening(16, beta=0.8, gamma=0.6, model="m", pooling="mean").fit(vectors)
    folder = fitted.save(tmp_path / "w")
    loaded = Whitening.load(folder, model="m", pooling="mean", dimension=24)
    for name in ("kernel", "bias", "mean", "components", "eigenvalues"):
        assert np.array_equal(getattr(loaded, name), getattr(fitted, name)), name
    assert np.array_equal(loaded.transform(vectors), fitted.transform(vectors))
    assert loaded.metadata == fitted.metadata
    meta = json.loads((folder / "transform.json").read_text())
    assert {k: meta[k] for k in ("model", "pooling", "dimension", "n_components", "n_fitted")} == {
        "model": "m",
        "pooling": "mean",
        "dimension": 24,
        "n_components": 16,
        "n_fitted": 600,
    }
    assert meta["beta"] == 0.8 and meta["gamma"] == 0.6 and meta["created"]


@pytest.mark.parametrize(
    ("expect", "named"),
    [
        ({"model": "other-model"}, "model 'm'"),
        ({"pooling": "cls"}, "pooling 'mean'"),
        ({"dimension": 768}, "dimension 24"),
    ],
)
def test_load_refuses_a_transform_for_another_encoder(
    tmp_path: Path,
    vectors: np.ndarray,
    expect: dict,
    named: str,
) -> None:
    folder = Whitening(model="m", pooling="mean").fit(vectors).save(tmp_path / "w")
    with pytest.raises(TransformMismatchError, match=named):
        Whitening.load(folder, **expect)


def test_load_of_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError):
        Whitening.load(tmp_path / "nothing")


def test_transform_checks_dimension(vectors: np.ndarray) -> None:
    w = Whitening().fit(vectors)
    with pytest.raises(DimensionMismatchError, match=r"\(n, 24\)"):
        w.transform(np.zeros((3, 10), np.float32))


def test_misuse_is_refused(vectors: np.ndarray) -> None:
    with pytest.raises(NotFittedError):
        Whitening().transform(vectors)
    with pytest.raises(DimensionMismatchError, match="exceeds"):
        Whitening(25).fit(vectors)
    with pytest.raises(EmptyInputError):
        Whitening().fit(np.zeros((0, 24), np.float32))
    with pytest.raises(InputValidationError, match="NaN"):
        Whitening().fit(np.full((4, 24), np.nan, np.float32))
    with pytest.raises(InputValidationError, match="beta"):
        Whitening(beta=1.5)
    with pytest.raises(DimensionMismatchError, match="d=12"):
        Whitening().fit([vectors[:10], vectors[:10, :12]])


def test_singular_covariance_stays_finite() -> None:
    # N < d: Sigma is rank-deficient; eigenvalue flooring keeps the kernel finite.
    x = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    w = Whitening(4).fit(x)
    assert np.isfinite(w.kernel).all() and np.isfinite(w.transform(x)).all()
