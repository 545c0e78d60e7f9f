"""Spearman x100 against an independent rank computation."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import InputValidationError
from app.evaluation.sts import spearman_x100


def test_matches_pearson_of_ranks_without_ties() -> None:
    rng = np.random.default_rng(0)
    predicted, gold = rng.normal(size=50), rng.normal(size=50)
    ranks_p = np.argsort(np.argsort(predicted)).astype(float)
    ranks_g = np.argsort(np.argsort(gold)).astype(float)
    expected = np.corrcoef(ranks_p, ranks_g)[0, 1] * 100
    assert spearman_x100(predicted, gold) == pytest.approx(expected, abs=1e-9)


def test_perfect_and_reversed_order() -> None:
    gold = [0.0, 1.5, 2.0, 4.8]
    assert spearman_x100([0.1, 0.2, 0.3, 0.9], gold) == pytest.approx(100.0)
    assert spearman_x100([0.9, 0.3, 0.2, 0.1], gold) == pytest.approx(-100.0)


def test_constant_scores_are_refused() -> None:
    with pytest.raises(InputValidationError):
        spearman_x100([1.0, 1.0, 1.0], [0.0, 1.0, 2.0])
