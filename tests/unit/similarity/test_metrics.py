"""Cosine similarity against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from app.core.errors import DimensionMismatchError
from app.similarity.metrics import cos_sim, pairwise_cos_sim


def test_cos_sim_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 16)), rng.normal(size=(5, 16))
    np.testing.assert_allclose(cos_sim(a, b), 1 - cdist(a, b, "cosine"), atol=1e-6)


def test_pairwise_is_the_diagonal() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    np.testing.assert_allclose(
        pairwise_cos_sim(a, b), np.diag(1 - cdist(a, b, "cosine")), atol=1e-6
    )


def test_shapes_are_checked() -> None:
    with pytest.raises(DimensionMismatchError):
        cos_sim(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(DimensionMismatchError):
        pairwise_cos_sim(np.zeros((2, 3)), np.zeros((3, 3)))
