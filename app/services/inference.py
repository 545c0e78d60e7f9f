"""The inference gateway: the one way from the services to the model (after TEI's ``Infer``).

It owns the micro-batcher in front of the model thread, the model's identity (name, pooling,
dimension, token limit) and the truncation policy, behind one call, ``embed_pooled``, that
returns sentence vectors, token vectors or both, with the token counts and which inputs were
cut. Every service that needs the model goes through it: embeddings, similarity, search and
reranking, collection upserts and explanations. (Normalisation stays with the embeddings
service: OpenAI's ``dimensions`` cuts the vectors before they are normalised.)

The truncation policy, one for every route: an input over the model's ``max_seq_length`` is
refused (``BatchTooLargeError``, HTTP 413) unless the request says ``truncate``; then the
encoder's cut stands and the caller reports which inputs were cut. The counts come with the
vectors from the model thread (``Encoded.lengths``), so each text is tokenized once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from app.core.errors import BatchTooLargeError
from app.core.types import Embeddings
from app.encoding.base import Encoded, Encoder
from app.services.batching import MicroBatcher

T = TypeVar("T")


@dataclass(frozen=True)
class Inferred:
    """What ``embed_pooled`` returns for n inputs.

    Attributes:
        embeddings: float32 (n, d) sentence vectors, not normalised.
        lengths: int64 (n,) tokens of each input before truncation, special tokens included.
        prompt_tokens: Tokens the model read, special tokens included, after truncation
            (OpenAI's ``usage.prompt_tokens``).
        truncated: Indices of the inputs cut to the model's limit (empty unless ``truncate``).
        token_embeddings: With ``token_embeddings=True``: n float32 arrays (n_tokens_i, d) of
            token vectors (special tokens and padding removed); else ``None``.
    """

    embeddings: Embeddings
    lengths: npt.NDArray[np.int64]
    prompt_tokens: int
    truncated: list[int] = field(default_factory=list)
    token_embeddings: list[npt.NDArray[np.float32]] | None = None


class InferenceGateway:
    """The model behind its batcher, its identity and the truncation policy.

    Args:
        encoder: The loaded encoder (its identity and, on the model thread, its calls).
        batcher: The micro-batcher in front of ``encoder.encode_with_lengths``.
    """

    def __init__(self, encoder: Encoder, batcher: MicroBatcher[Encoded]) -> None:
        self.encoder = encoder
        self.batcher = batcher

    @property
    def model_name(self) -> str:
        """The model's name as the registry resolved it."""
        return self.encoder.model_name

    @property
    def pooling(self) -> str:
        """The pooling mode (``mean``, ``cls``...)."""
        return self.encoder.pooling

    @property
    def dimension(self) -> int:
        """d, the length of each sentence vector."""
        return self.encoder.dimension

    @property
    def max_seq_length(self) -> int:
        """The model's input limit, in tokens (special tokens included)."""
        return self.encoder.max_seq_length

    def check_lengths(
        self, lengths: Sequence[int], truncate: bool, what: str = "inputs"
    ) -> list[int]:
        """The truncation policy: which inputs are over ``max_seq_length``.

        Args:
            lengths: Tokens per input before truncation, special tokens included.
            truncate: Whether the request accepts the encoder's cut.
            what: What the inputs are called in the error message (``param``).

        Returns:
            Indices of the inputs over the limit (empty unless ``truncate``).

        Raises:
            BatchTooLargeError: An input is too long and ``truncate`` is off (``param`` =
                ``what``; the message names the first one and both fixes).
        """
        limit = self.max_seq_length
        over = [i for i, n in enumerate(lengths) if n > limit]
        if over and not truncate:
            i = over[0]
            raise BatchTooLargeError(
                f"{what}[{i}] has {lengths[i]} tokens; the model takes {limit}: shorten it, or "
                "send truncate=true to cut it (the response then lists it)",
                param=what,
            )
        return over

    async def embed_pooled(
        self,
        inputs: Sequence[str],
        *,
        truncate: bool = False,
        token_embeddings: bool = False,
        what: str = "inputs",
    ) -> Inferred:
        """Encode ``inputs`` through the batcher and apply the truncation policy.

        Sentence vectors alone are gathered with other requests' inputs into shared model
        calls; with ``token_embeddings`` the sentence and token vectors come from one forward
        pass of their own.

        Args:
            inputs: n texts (already checked against the request limits).
            truncate: Accept the encoder's cut of inputs over the model's limit.
            token_embeddings: Also return the token vectors.
            what: What the inputs are called in error messages.

        Raises:
            BatchTooLargeError: An input is too long and ``truncate`` is off.
            OverloadedError: The model queue is full (HTTP 429).
            NotReadyError: The batcher is not running.
        """
        texts = list(inputs)
        if token_embeddings:
            encode = functools.partial(self.encoder.encode_with_lengths, token_embeddings=True)
            encoded = await self.batcher.run(encode, texts)
        else:
            encoded = Encoded.concat(await self.batcher.encode_parts(texts))
        over = self.check_lengths(encoded.lengths.tolist(), truncate, what)
        read = int(np.minimum(encoded.lengths, self.max_seq_length).sum())
        return Inferred(encoded.vectors, encoded.lengths, read, over, encoded.token_embeddings)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run other model work (a torch transform, tokenization, an explanation) alone on
        the model thread, through the same bounded queue.

        Raises:
            OverloadedError: The model queue is full.
        """
        return await self.batcher.run(fn, *args)

    async def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """Word pieces per text, as the rows of ``token_embeddings`` (no special tokens)."""
        return await self.batcher.run(self.encoder.tokenize, list(texts))
