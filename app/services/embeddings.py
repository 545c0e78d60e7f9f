"""Embeddings and pairwise similarity for the API: batching, limits, named transforms."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.core.errors import (
    BatchTooLargeError,
    DimensionMismatchError,
    InputValidationError,
    ModelNotFoundError,
)
from app.core.types import Embeddings
from app.encoding.base import Encoded, Encoder
from app.encoding.registry import ALIASES
from app.services.batching import MicroBatcher
from app.services.encoders import explain
from app.services.limits import Limits
from app.services.transforms import TransformRegistry
from app.services.transport import TRANSPORT_METHODS, alignment, check_measure
from app.similarity.metrics import cos_sim
from app.similarity.ot import distance_to_score, transport_distance
from app.transforms.normalize import l2_normalize

if TYPE_CHECKING:
    from app.encoding.attribution import Explanation

METHODS = ("cosine", *TRANSPORT_METHODS)


@dataclass(frozen=True)
class SimilarityResult:
    """Scores of ``similarity``, higher is more similar, and optional token alignments.

    Attributes:
        scores: One per sentence: cosine in [-1, 1]; 1 - WRD in [-1, 1]; 1 / (1 + WMD) in
            (0, 1].
        alignments: Per sentence, the token pairs carrying the most transport mass
            (``{"source", "target", "source_index", "target_index", "mass"}``), when asked.
        tokens: With alignments, the word pieces compared (no special tokens), the source
            sentence's first; the indices of ``alignments`` point into them.
        truncated: Texts cut to the model's limit: 0 is the source sentence, i + 1 is
            ``sentences[i]``.
    """

    scores: list[float]
    alignments: list[list[dict[str, Any]]] | None = None
    tokens: list[list[str]] | None = None
    truncated: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Embedded:
    """What ``embed`` returns.

    Attributes:
        vectors: float32 (n, d) or (n, dimensions), unit length when normalised.
        tokens: Tokens the model read (special tokens included, after truncation).
        truncated: Indices of the sentences cut to the model's limit.
    """

    vectors: Embeddings
    tokens: int
    truncated: list[int]


class EmbeddingService:
    """Sentence vectors and similarity scores through the micro-batcher.

    Args:
        encoder: The loaded encoder (for its name, dimension and tokenizer).
        batcher: The micro-batcher in front of ``encoder.encode``.
        limits: Request limits.
        transforms: Named transforms for ``similarity``.
    """

    def __init__(
        self,
        encoder: Encoder,
        batcher: MicroBatcher[Encoded],
        limits: Limits,
        transforms: TransformRegistry,
        served_model_names: Sequence[str] | None = None,
    ) -> None:
        self.encoder = encoder
        self.batcher = batcher
        self.limits = limits
        self.transforms = transforms
        own = encoder.model_name  # a local folder's name, not the server's path to it
        own = Path(own).name if Path(own).is_absolute() else own
        default = [own, *(alias for alias, name in ALIASES.items() if name == own)]
        #: The names the OpenAI routes answer to, the reported one first (``*``: any name).
        self.served_model_names = list(served_model_names or default)
        self._reported = next((n for n in self.served_model_names if n != "*"), own)

    def check_model(self, name: str | None) -> str:
        """The name to report for a request's ``model``: the name itself when served, the
        first served name (other than ``*``) when ``None``.

        Raises:
            NotFoundError: ``name`` is not served (``param`` = ``model``); the message lists
                the served names and how to add one.
        """
        names = self.served_model_names
        if name is None:
            return self._reported
        if name in names or "*" in names:
            return name
        raise ModelNotFoundError(
            f"model {name!r} is not served here; served: {', '.join(names)}. Send one of "
            "these (or omit model), or list more names in SENTSIM_SERVED_MODEL_NAMES "
            "('*' accepts any)",
            param="model",
        )

    def check_lengths(
        self, lengths: Sequence[int], truncate: bool, what: str = "inputs"
    ) -> list[int]:
        """Which sentences are over ``max_seq_length`` (and were encoded truncated).

        One policy for every route: a sentence over the model's limit is refused unless the
        request says ``truncate``; then the encoder's cut stands and the caller reports which.
        The counts come with the vectors from the model thread (``Encoded.lengths``), so the
        text is tokenized once.

        Args:
            lengths: Tokens per sentence before truncation, special tokens included.

        Returns:
            Indices of the sentences over the limit (empty unless ``truncate``).

        Raises:
            BatchTooLargeError: A sentence is too long and ``truncate`` is off (``param`` =
                ``what``).
        """
        limit = self.encoder.max_seq_length
        over = [i for i, n in enumerate(lengths) if n > limit]
        if over and not truncate:
            i = over[0]
            raise BatchTooLargeError(
                f"{what}[{i}] has {lengths[i]} tokens; the model takes {limit}: shorten it, or "
                "send truncate=true to cut it (the response then lists it)",
                param=what,
            )
        return over

    async def embed(
        self,
        sentences: Sequence[str],
        *,
        normalize: bool = True,
        dimensions: int | None = None,
        truncate: bool = False,
        what: str = "inputs",
    ) -> Embedded:
        """Sentence vectors, float32 (n, d) — or (n, dimensions): the first ``dimensions``
        components, renormalised (the OpenAI ``dimensions`` parameter).

        Args:
            truncate: Encode the beginning of a sentence over the model's limit instead of
                refusing it (``check_lengths``); the result names those cut.
            what: What the sentences are called in error messages (``input``, ``inputs``).

        Raises:
            EmptyInputError, BatchTooLargeError: Empty, oversize or (without ``truncate``)
                too long input.
            DimensionMismatchError: ``dimensions`` outside [1, d].
        """
        self.limits.check_sentences(sentences, what)
        d = self.encoder.dimension
        if dimensions is not None and not 1 <= dimensions <= d:
            raise DimensionMismatchError(
                f"dimensions={dimensions}; this model gives 1..{d}", param="dimensions"
            )
        encoded = Encoded.concat(await self.batcher.encode_parts(sentences))
        over = self.check_lengths(encoded.lengths.tolist(), truncate, what)
        vectors = encoded.vectors
        if dimensions is not None:
            vectors = vectors[:, :dimensions]
        tokens = int(np.minimum(encoded.lengths, self.encoder.max_seq_length).sum())
        return Embedded(l2_normalize(vectors) if normalize else vectors, tokens, over)

    async def similarity(
        self,
        source_sentence: str,
        sentences: Sequence[str],
        *,
        method: str = "cosine",
        transform: str | None = None,
        with_alignment: bool = False,
        truncate: bool = False,
    ) -> SimilarityResult:
        """Similarity of ``source_sentence`` to each of ``sentences``.

        ``cosine`` compares sentence vectors (raw, or corrected by the named transform);
        ``wmd`` / ``wrd`` compare the two sentences' token vectors by optimal transport
        (``app.similarity.ot``) and can return the token alignment.

        Returns:
            Scores, higher is more similar (see ``SimilarityResult``), and alignments if asked.

        Raises:
            InputValidationError: Unknown method or transform name, a transform or an
                alignment with a method that does not take it.
            NotFoundError, TransformMismatchError: From the transform registry.
            EmptyInputError, BatchTooLargeError: Empty or oversize input.
        """
        if method not in METHODS:
            raise InputValidationError(
                f"unknown method {method!r}; choose one of {', '.join(METHODS)}"
            )
        texts = [source_sentence, *sentences]
        self.limits.check_sentences(texts, "sentences")
        if method == "cosine":
            if with_alignment:
                raise InputValidationError("alignment comes from transport: use method wmd or wrd")
            corrector = None if transform is None else self.transforms.get(transform)
            encoded = Encoded.concat(await self.batcher.encode_parts(texts))
            over = self.check_lengths(encoded.lengths.tolist(), truncate, "sentences")
            vectors = encoded.vectors
            if corrector is not None:  # torch (BERT-flow): on the model thread
                vectors = await self.batcher.run(corrector.transform, vectors)
            return SimilarityResult(
                [float(s) for s in np.asarray(cos_sim(vectors[:1], vectors[1:]))[0]], truncated=over
            )
        if transform is not None:
            raise InputValidationError("a transform corrects sentence vectors: use it with cosine")
        measure = check_measure(method)
        encoded = await self.batcher.run(
            functools.partial(self.encoder.encode_with_lengths, tokens=True), texts
        )
        over = self.check_lengths(encoded.lengths.tolist(), truncate, "sentences")
        tokens = encoded.tokens
        assert tokens is not None
        results = await asyncio.to_thread(
            lambda: [transport_distance(tokens[0], t, measure) for t in tokens[1:]]
        )
        scores = [distance_to_score(r.distance, measure) for r in results]
        if not with_alignment:
            return SimilarityResult(scores, truncated=over)
        words = await self.batcher.run(self.encoder.tokenize, texts)
        aligned = [alignment(r, words[0], w) for r, w in zip(results, words[1:], strict=True)]
        return SimilarityResult(scores, aligned, words, truncated=over)

    async def explain(
        self,
        source_sentence: str,
        sentence: str,
        *,
        n_steps: int = 50,
        merge_words: bool = False,
        truncate: bool = False,
    ) -> tuple[Explanation, list[int]]:
        """Integrated-gradients attribution of the pair's cosine to its tokens
        (``app.encoding.attribution.explain_similarity``), run on the model thread.

        Returns:
            The explanation, and which sentences were cut to the model's limit (0: the
            source sentence, 1: the other; empty unless ``truncate``).

        Raises:
            EmptyInputError, BatchTooLargeError: Empty, oversize or (without ``truncate``)
                too long input.
            ConflictError: The served encoder cannot be explained (int8, not a BERT-family
                ``BertEncoder``, ``merge_words`` without a fast tokenizer).
            OverloadedError: The model queue is full.
        """
        self.limits.check_sentences([source_sentence, sentence], "sentences")
        explanation = await self.batcher.run(
            functools.partial(explain, n_steps=n_steps, merge_words=merge_words),
            self.encoder,
            source_sentence,
            sentence,
        )
        return explanation, self.check_lengths(explanation.lengths, truncate, "sentences")
