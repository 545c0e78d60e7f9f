"""Closed-form distances between two multivariate normals fitted to two sets of vectors.

For N(μ1, Σ1) and N(μ2, Σ2) in d dimensions (DESIGN.md §6):

- 2-Wasserstein (Fréchet) distance: W2² = ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ2^½ Σ1 Σ2^½)^½)
  (Dowson & Landau 1982; the FID formula). Defined for singular covariances as they are.
- Kullback–Leibler divergence: KL(1‖2) = ½[tr(Σ2⁻¹Σ1) + (μ2−μ1)ᵀΣ2⁻¹(μ2−μ1) − d
  + ln(det Σ2 / det Σ1)]; not symmetric.
- Bhattacharyya distance: D_B = ⅛ (μ1−μ2)ᵀ Σ⁻¹ (μ1−μ2) + ½ ln(det Σ / √(det Σ1 det Σ2)),
  Σ = (Σ1 + Σ2) / 2 (Bhattacharyya 1943); symmetric.

KL and Bhattacharyya need inverses and determinants, which a rank-deficient covariance lacks
(all-MiniLM-L6-v2 has three constant dimensions; fewer vectors than dimensions gives rank < d):
both covariances get the same ridge ``ridge x mean variance`` (``ridge`` itself when every
variance is 0) added to their diagonal, stated in the result. Everything is computed in
float64 through eigendecompositions (no ``sqrtm``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.core.errors import InputValidationError
from app.core.types import Float64Array

#: Ridge added to both covariances' diagonals for KL and Bhattacharyya, relative to the mean
#: variance of the two (an absolute floor keeps all-constant inputs finite).
DEFAULT_RIDGE = 1e-6


@dataclass(frozen=True)
class Gaussian:
    """A multivariate normal fitted to n vectors.

    Attributes:
        mean: float64 (d,).
        cov: float64 (d, d), the unbiased sample covariance (ddof 1; zeros when n = 1).
        n: How many vectors it was fitted on.
    """

    mean: Float64Array
    cov: Float64Array
    n: int

    @classmethod
    def fit(cls, vectors: npt.ArrayLike) -> Gaussian:
        """Fit mean and covariance to vectors of shape (n, d), n >= 1, any float dtype.

        Raises:
            InputValidationError: Not a non-empty 2-d array of finite numbers.
        """
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
            raise InputValidationError(f"expected vectors of shape (n, d), n >= 1; got {x.shape}")
        if not np.isfinite(x).all():
            raise InputValidationError("vectors hold NaN or infinite values")
        mean = x.mean(axis=0)
        centered = x - mean
        cov = centered.T @ centered / max(x.shape[0] - 1, 1)
        return cls(mean, cov, int(x.shape[0]))

    @classmethod
    def fit_chunks(cls, chunks: Iterable[npt.ArrayLike]) -> Gaussian:
        """Fit to the rows of several (b, d) chunks without holding them all (running sums in
        float64), e.g. a collection's stored vectors batch by batch.

        Raises:
            InputValidationError: No rows, chunks of different d, or non-finite values.
        """
        n, total, outer = 0, None, None
        for chunk in chunks:
            x = np.asarray(chunk, dtype=np.float64)
            if x.ndim != 2 or (total is not None and x.shape[1] != total.shape[0]):
                raise InputValidationError(f"chunks of shape (b, d) expected; got {x.shape}")
            if not np.isfinite(x).all():
                raise InputValidationError("vectors hold NaN or infinite values")
            if total is None or outer is None:
                total, outer = np.zeros(x.shape[1]), np.zeros((x.shape[1], x.shape[1]))
            n += x.shape[0]
            total += x.sum(axis=0)
            outer += x.T @ x
        if n == 0 or total is None or outer is None:
            raise InputValidationError("no vectors to fit a Gaussian to")
        mean = total / n
        cov = (outer - n * np.outer(mean, mean)) / max(n - 1, 1)
        return cls(mean, (cov + cov.T) / 2, n)

    @property
    def dimension(self) -> int:
        """d."""
        return int(self.mean.shape[0])


@dataclass(frozen=True)
class GaussianDistances:
    """Distances from ``first`` to ``second`` (0 for identical Gaussians; larger: further).

    Attributes:
        w2: 2-Wasserstein distance, in the vectors' units (cosine space: ≤ 2 + spread); >= 0.
        kl: KL(first ‖ second) in nats, >= 0 (regularised by ``ridge``).
        bhattacharyya: Bhattacharyya distance, >= 0, symmetric (regularised by ``ridge``).
        ridge: The absolute value added to both covariances' diagonals for kl and
            bhattacharyya.
    """

    w2: float
    kl: float
    bhattacharyya: float
    ridge: float


def _sym_eigh(matrix: Float64Array) -> tuple[Float64Array, Float64Array]:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return np.clip(values, 0.0, None), vectors


def _sqrtm_psd(matrix: Float64Array) -> Float64Array:
    """The symmetric square root of a positive semi-definite matrix."""
    values, vectors = _sym_eigh(matrix)
    root: Float64Array = (vectors * np.sqrt(values)) @ vectors.T
    return root


def wasserstein2(first: Gaussian, second: Gaussian) -> float:
    """The 2-Wasserstein distance between two Gaussians (>= 0; 0 when equal).

    Raises:
        InputValidationError: Different dimensions.
    """
    _check_dimensions(first, second)
    root = _sqrtm_psd(second.cov)
    cross = _sym_eigh(root @ first.cov @ root)[0]
    squared = float(
        np.sum((first.mean - second.mean) ** 2)
        + np.trace(first.cov)
        + np.trace(second.cov)
        - 2.0 * np.sum(np.sqrt(cross))
    )
    return float(np.sqrt(max(squared, 0.0)))


def gaussian_distances(
    first: Gaussian, second: Gaussian, ridge: float = DEFAULT_RIDGE
) -> GaussianDistances:
    """W2, KL(first ‖ second) and the Bhattacharyya distance between two Gaussians.

    Args:
        ridge: Relative ridge for KL and Bhattacharyya (see the module docstring), >= 0.

    Raises:
        InputValidationError: Different dimensions, or a negative ridge.
    """
    _check_dimensions(first, second)
    if ridge < 0:
        raise InputValidationError(f"ridge must be >= 0, got {ridge}")
    d = first.dimension
    scale = float(np.trace(first.cov) + np.trace(second.cov)) / (2 * d)
    absolute = ridge * scale if scale > 0 else ridge
    eye = np.eye(d) * absolute
    c1, c2 = first.cov + eye, second.cov + eye
    diff = second.mean - first.mean
    logdet1, logdet2 = _logdet(c1), _logdet(c2)
    inv2 = np.linalg.inv(c2)
    kl = 0.5 * float(np.trace(inv2 @ c1) + diff @ inv2 @ diff - d + logdet2 - logdet1)
    mid = (c1 + c2) / 2
    bhattacharyya = float(diff @ np.linalg.solve(mid, diff)) / 8 + 0.5 * (
        _logdet(mid) - 0.5 * (logdet1 + logdet2)
    )
    return GaussianDistances(
        w2=wasserstein2(first, second),
        kl=max(kl, 0.0),
        bhattacharyya=max(bhattacharyya, 0.0),
        ridge=absolute,
    )


def _logdet(matrix: Float64Array) -> float:
    sign, value = np.linalg.slogdet(matrix)
    if sign <= 0:
        raise InputValidationError(
            "a covariance is singular even with the ridge: pass a larger ridge"
        )
    return float(value)


def _check_dimensions(first: Gaussian, second: Gaussian) -> None:
    if first.dimension != second.dimension:
        raise InputValidationError(
            f"the Gaussians have different dimensions ({first.dimension} vs {second.dimension})"
        )
