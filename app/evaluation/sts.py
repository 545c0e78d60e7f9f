"""STS evaluation: rank correlation between predicted similarity and gold scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr

from app.core.errors import DimensionMismatchError, InputValidationError


def spearman_x100(predicted: Sequence[float] | np.ndarray, gold: Sequence[float]) -> float:
    """Spearman's rank correlation x100, the metric of the STS tables (SBERT, BERT-flow,
    BERT-whitening, SimCSE).

    Args:
        predicted: (n,) similarity scores, higher meaning more similar (cosine, 1 - WRD, ...).
        gold: (n,) gold scores (STS-B 0-5, or 0/1 labels for binary sets).

    Returns:
        A float in [-100, 100]; higher means the prediction ranks pairs more like the gold.

    Raises:
        DimensionMismatchError: Lengths differ.
        InputValidationError: Fewer than 2 pairs, or a constant input (correlation undefined).
    """
    p = np.asarray(predicted, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    if p.shape != g.shape or p.ndim != 1:
        raise DimensionMismatchError(f"need two (n,) arrays, got {p.shape} and {g.shape}")
    if len(p) < 2 or np.ptp(p) == 0 or np.ptp(g) == 0:
        raise InputValidationError("Spearman needs >= 2 pairs and non-constant scores")
    return float(spearmanr(p, g).statistic) * 100.0
