"""The ``Encoder`` protocol: what the services need from a sentence encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from app.core.types import Embeddings


class Encoder(Protocol):
    """Turns sentences into vectors.

    Attributes:
        model_name: The model's name as resolved by the registry (recorded in transform
            metadata, so a transform is only reused with the encoder that fitted it).
        pooling: The pooling mode (``cls``, ``mean``, ``first_last_avg``, ``last2avg``).
        precision: ``fp32``, ``bf16`` or ``int8``.
        max_seq_length: Truncation length in tokens.
        dimension: d, the length of each sentence vector.
    """

    model_name: str
    pooling: str
    precision: str
    max_seq_length: int

    def count_tokens(self, sentences: Sequence[str]) -> list[int]:
        """Tokens of each sentence before truncation, special tokens included."""
        ...

    def tokenize(self, sentences: Sequence[str]) -> list[list[str]]:
        """Word pieces per sentence, as the rows of ``encode_tokens``."""
        ...

    def with_pooling(self, pooling: str) -> Encoder:
        """Return an encoder sharing this one's model, with another pooling mode."""
        ...

    @property
    def dimension(self) -> int: ...

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int | None = None,
        show_progress_bar: bool = False,
    ) -> Embeddings:
        """Return float32 sentence vectors of shape (n, d), in input order."""
        ...

    def encode_tokens(
        self,
        sentences: Sequence[str],
        batch_size: int | None = None,
        show_progress_bar: bool = False,
    ) -> list[npt.NDArray[np.float32]]:
        """Return one float32 array (n_tokens_i, d) of token vectors per sentence."""
        ...
