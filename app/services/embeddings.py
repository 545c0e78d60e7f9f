"""Embeddings and pairwise similarity for the API: batching, limits, named transforms."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.core.errors import (
    DimensionMismatchError,
    InputValidationError,
    ModelNotFoundError,
)
from app.core.types import Embeddings
from app.encoding.registry import ALIASES
from app.services.encoders import explain
from app.services.inference import InferenceGateway
from app.services.limits import Limits
from app.services.transforms import TransformRegistry
from app.services.transport import TRANSPORT_METHODS, alignment, check_transport_method
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
        word_pieces: With alignments, the word pieces compared (no special tokens), the
            source sentence's first; the indices of ``alignments`` point into them.
        truncated: Texts cut to the model's limit: 0 is the source sentence, i + 1 is
            ``sentences[i]``.
    """

    scores: list[float]
    alignments: list[list[dict[str, Any]]] | None = None
    word_pieces: list[list[str]] | None = None
    truncated: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Embedded:
    """What ``embed`` returns.

    Attributes:
        vectors: float32 (n, d) or (n, dimensions), unit length when normalised.
        prompt_tokens: Tokens the model read (special tokens included, after truncation).
        truncated: Indices of the sentences cut to the model's limit.
    """

    vectors: Embeddings
    prompt_tokens: int
    truncated: list[int]


class EmbeddingService:
    """Sentence vectors and similarity scores through the inference gateway.

    Args:
        inference: The gateway to the model.
        limits: Request limits.
        transforms: Named transforms for ``similarity``.
        served_model_names: The names the OpenAI routes answer to (default: the model's own
            name and its aliases).
    """

    def __init__(
        self,
        inference: InferenceGateway,
        limits: Limits,
        transforms: TransformRegistry,
        served_model_names: Sequence[str] | None = None,
    ) -> None:
        self.inference = inference
        self.limits = limits
        self.transforms = transforms
        own = inference.model_name  # a local folder's name, not the server's path to it
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
                refusing it (``InferenceGateway.check_lengths``); the result names those cut.
            what: What the sentences are called in error messages (``input``, ``inputs``).

        Raises:
            EmptyInputError, BatchTooLargeError: Empty, oversize or (without ``truncate``)
                too long input.
            DimensionMismatchError: ``dimensions`` outside [1, d].
        """
        self.limits.check_sentences(sentences, what)
        d = self.inference.dimension
        if dimensions is not None and not 1 <= dimensions <= d:
            raise DimensionMismatchError(
                f"dimensions={dimensions}; this model gives 1..{d}", param="dimensions"
            )
        inferred = await self.inference.embed_pooled(sentences, truncate=truncate, what=what)
        vectors = inferred.embeddings
        if dimensions is not None:
            vectors = vectors[:, :dimensions]
        vectors = l2_normalize(vectors) if normalize else vectors
        return Embedded(vectors, inferred.prompt_tokens, inferred.truncated)

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
            inferred = await self.inference.embed_pooled(texts, truncate=truncate, what="sentences")
            vectors = inferred.embeddings
            if corrector is not None:  # torch (BERT-flow): on the model thread
                vectors = await self.inference.run(corrector.transform, vectors)
            scores = np.asarray(cos_sim(vectors[:1], vectors[1:]))[0]
            return SimilarityResult([float(s) for s in scores], truncated=inferred.truncated)
        if transform is not None:
            raise InputValidationError("a transform corrects sentence vectors: use it with cosine")
        transport = check_transport_method(method)
        inferred = await self.inference.embed_pooled(
            texts, truncate=truncate, token_embeddings=True, what="sentences"
        )
        over, tokens = inferred.truncated, inferred.token_embeddings
        assert tokens is not None
        results = await asyncio.to_thread(
            lambda: [transport_distance(tokens[0], t, transport) for t in tokens[1:]]
        )
        scores = [distance_to_score(r.distance, transport) for r in results]
        if not with_alignment:
            return SimilarityResult(scores, truncated=over)
        words = await self.inference.tokenize(texts)
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
        explanation = await self.inference.run(
            partial(explain, n_steps=n_steps, merge_words=merge_words),
            self.inference.encoder,
            source_sentence,
            sentence,
        )
        return explanation, self.inference.check_lengths(explanation.lengths, truncate, "sentences")
