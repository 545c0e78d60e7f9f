"""Cosine similarity between sentence vectors (names as in sentence-transformers' ``util``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.core.errors import DimensionMismatchError
from app.core.types import Embeddings
from app.transforms.normalize import l2_normalize


def _check_2d(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[Embeddings, Embeddings]:
    x, y = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise DimensionMismatchError(f"expected (n, d) and (m, d) arrays, got {x.shape}, {y.shape}")
    return x, y


def cos_sim(a: npt.ArrayLike, b: npt.ArrayLike) -> Embeddings:
    """Cosine similarity of every row of ``a`` with every row of ``b``.

    Args:
        a: float array (n, d).
        b: float array (m, d).

    Returns:
        float32 array (n, m) in [-1, 1]; higher is more similar. A zero row scores 0.

    Raises:
        DimensionMismatchError: Not two 2-D arrays with the same d.
    """
    x, y = _check_2d(a, b)
    return l2_normalize(x) @ l2_normalize(y).T


def pairwise_cos_sim(a: npt.ArrayLike, b: npt.ArrayLike) -> Embeddings:
    """Cosine similarity of row i of ``a`` with row i of ``b``.

    Args:
        a: float array (n, d).
        b: float array (n, d).

    Returns:
        float32 array (n,) in [-1, 1]; higher is more similar.

    Raises:
        DimensionMismatchError: The shapes differ or are not 2-D.
    """
    x, y = _check_2d(a, b)
    if x.shape != y.shape:
        raise DimensionMismatchError(f"pairwise needs equal shapes, got {x.shape}, {y.shape}")
    return np.asarray((l2_normalize(x) * l2_normalize(y)).sum(axis=1), dtype=np.float32)
