"""The ``Encoder`` protocol: what the services need from a sentence encoder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from app.core.types import Embeddings


@dataclass(frozen=True)
class Encoded:
    """What one model pass over n sentences gives (``BertEncoder.encode_with_lengths``).

    Attributes:
        vectors: float32 (n, d) sentence vectors, not normalised.
        lengths: int64 (n,) tokens of each sentence before truncation, special tokens
            included (over ``max_seq_length``: the sentence was cut).
        token_embeddings: n float32 arrays (n_tokens_i, d) of token vectors, or ``None``.
    """

    vectors: Embeddings
    lengths: npt.NDArray[np.int64]
    token_embeddings: list[npt.NDArray[np.float32]] | None = None

    def __len__(self) -> int:
        return len(self.vectors)

    @classmethod
    def concat(cls, parts: Sequence[Encoded]) -> Encoded:
        """The rows of ``parts``, one after the other (token vectors only if all have them)."""
        if len(parts) == 1:
            return parts[0]
        tokens = None
        if all(p.token_embeddings is not None for p in parts):
            tokens = [row for p in parts for row in p.token_embeddings or ()]
        return cls(
            np.concatenate([p.vectors for p in parts]),
            np.concatenate([p.lengths for p in parts]),
            tokens,
        )

    def __getitem__(self, rows: slice) -> Encoded:
        """The rows ``rows`` (a slice) of each field."""
        tokens = None if self.token_embeddings is None else self.token_embeddings[rows]
        return Encoded(self.vectors[rows], self.lengths[rows], tokens)


class Encoder(Protocol):
    """Turns sentences into vectors.

    Attributes:
        model_name: The model's name as resolved by the registry (recorded in transform
            metadata, so a transform is only reused with the encoder that fitted it).
        pooling: The pooling mode (``cls``, ``mean``, ``first_last_avg``, ``last2avg``).
        precision: ``fp32``, ``bf16`` or ``int8`` (what ``auto`` chose, when asked for it).
        precision_reason: Why that precision (``asked for``, or what ``auto`` measured).
        max_seq_length: Truncation length in tokens.
        dimension: d, the length of each sentence vector.
    """

    model_name: str
    pooling: str
    precision: str
    precision_reason: str
    max_seq_length: int

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

    def encode_with_lengths(
        self, sentences: Sequence[str], *, token_embeddings: bool = False
    ) -> Encoded:
        """Return vectors, token counts before truncation and (``token_embeddings``) token
        vectors."""
        ...

    def encode_tokens(
        self,
        sentences: Sequence[str],
        batch_size: int | None = None,
        show_progress_bar: bool = False,
    ) -> list[npt.NDArray[np.float32]]:
        """Return one float32 array (n_tokens_i, d) of token vectors per sentence."""
        ...
