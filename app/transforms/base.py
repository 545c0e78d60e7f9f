"""The ``EmbeddingTransform`` protocol shared by whitening and flow."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, Self

from app.core.types import Embeddings


class EmbeddingTransform(Protocol):
    """A fitted map from encoder vectors (n, d) to corrected vectors (n, k).

    Attributes:
        model: Name of the model whose vectors it was fitted on (``None`` if not recorded).
        pooling: Pooling mode of those vectors (``None`` if not recorded).
    """

    model: str | None
    pooling: str | None

    @property
    def dimension(self) -> int:
        """d, the input dimension."""
        ...

    @property
    def n_components(self) -> int:
        """k, the output dimension."""
        ...

    def fit(self, embeddings: Embeddings | Iterable[Embeddings]) -> Self:
        """Fit on float32 vectors (n, d), or on an iterable of such batches."""
        ...

    def transform(self, embeddings: Embeddings) -> Embeddings:
        """Map float32 vectors (n, d) to float32 (n, k)."""
        ...

    def save(self, path: str | Path) -> Path:
        """Write the transform to folder ``path`` (safetensors + JSON); return the folder."""
        ...
