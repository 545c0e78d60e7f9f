"""L2 normalisation, kept as its own step so it can follow any transform."""

from __future__ import annotations

import numpy as np

from app.core.types import Embeddings


def l2_normalize(embeddings: Embeddings, eps: float = 1e-12) -> Embeddings:
    """Scale each row to unit Euclidean norm.

    After this, the inner product of two rows is their cosine similarity.

    Args:
        embeddings: float array (n, d).
        eps: Floor on the norm, so a zero row stays zero instead of becoming NaN.

    Returns:
        float32 array (n, d) whose non-zero rows have norm 1.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(x / np.maximum(norms, eps), dtype=np.float32)
