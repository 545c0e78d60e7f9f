"""Paraphrase generation for the API: an optional SimBERT generator behind a concurrency cap."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.errors import BatchTooLargeError, EmptyInputError, NotReadyError

if TYPE_CHECKING:
    from app.generation.sampling import Paraphrase, SimBertGenerator

NO_GENERATOR = (
    "no paraphrase generator is loaded: unset SENTSIM_GENERATOR to use the shipped "
    "models/simbert-quora (run from a clone of sentsim), or point SENTSIM_GENERATOR (or "
    "`sentsim serve --generator`) at a SimBERT checkpoint folder, then restart"
)


def read_earlier_names(knobs: Mapping[str, Any]) -> dict[str, Any]:
    """Generation knobs as given (names to values), with the earlier convention read the
    earlier way: knobs that have ``top_k`` and no ``num_candidates`` meant
    ``num_return_sequences`` = candidates sampled (default 32) and ``top_k`` = paraphrases
    returned; they become ``num_candidates`` and ``num_return_sequences`` (Hugging Face's
    names, ``top_k`` being the token cut-off). Other knobs pass unchanged."""
    read = dict(knobs)
    if "top_k" in read and "num_candidates" not in read:
        read["num_candidates"] = read.pop("num_return_sequences", 32)
        read["num_return_sequences"] = read.pop("top_k")
    return read


@dataclass(frozen=True)
class GenerationLimits:
    """Upper bounds of a paraphrase request."""

    max_num_candidates: int = 64
    max_new_tokens: int = 64
    max_text_chars: int = 1000


class ParaphraseService:
    """Runs ``SimBertGenerator.generate`` off the event loop, at most ``max_concurrent`` at once.

    Args:
        generator: The loaded generator, or ``None`` (then every request is a 503).
        max_concurrent: Generations running at the same time; others wait their turn.
        limits: Request bounds.
    """

    def __init__(
        self,
        generator: SimBertGenerator | None,
        max_concurrent: int = 2,
        limits: GenerationLimits = GenerationLimits(),  # noqa: B008 (frozen dataclass)
    ) -> None:
        self.generator = generator
        self.limits = limits
        #: The generator's folder name or Hub id (no server path), ``None`` without one.
        self.model_name = (
            None
            if generator is None
            else str(generator.simbert.model.name_or_path).rstrip("/").rsplit("/", 1)[-1]
        )
        self._semaphore = asyncio.Semaphore(max_concurrent)

    async def paraphrase(
        self,
        text: str,
        *,
        num_candidates: int = 32,
        num_return_sequences: int = 5,
        top_k: int = 0,
        top_p: float = 0.95,
        temperature: float = 1.0,
        max_new_tokens: int = 32,
        seed: int | None = None,
        truncate: bool = False,
    ) -> tuple[list[Paraphrase], bool]:
        """Up to ``num_return_sequences`` paraphrases of ``text`` out of ``num_candidates``
        sampled, most similar first (``SimBertGenerator.generate``).

        A text over the generator's source limit is refused unless ``truncate``; then its
        beginning is paraphrased, and the second value says so.

        Returns:
            (the paraphrases, whether ``text`` was truncated).

        Raises:
            NotReadyError: No generator is loaded (the message says how to get one).
            EmptyInputError: Empty text.
            BatchTooLargeError: Over a limit, or too long without ``truncate``.
        """
        if self.generator is None:
            raise NotReadyError(NO_GENERATOR)
        if not text.strip():
            raise EmptyInputError("text is empty")
        limits = self.limits
        for name, value, bound in (
            ("text characters", len(text), limits.max_text_chars),
            ("num_candidates", num_candidates, limits.max_num_candidates),
            ("num_return_sequences", num_return_sequences, limits.max_num_candidates),
            ("max_new_tokens", max_new_tokens, limits.max_new_tokens),
        ):
            if value > bound:
                raise BatchTooLargeError(f"{name} = {value}; the limit is {bound}")
        generator = self.generator
        tokens, limit = generator.count_tokens(text), generator.max_source_tokens
        if tokens > limit and not truncate:
            raise BatchTooLargeError(
                f"text has {tokens} tokens; the generator takes {limit}: shorten it, or send "
                "truncate=true to paraphrase its beginning (the response then says so)",
                param="text",
            )
        async with self._semaphore:
            results = await asyncio.to_thread(
                generator.generate,
                text,
                num_candidates=num_candidates,
                num_return_sequences=num_return_sequences,
                top_k=top_k,
                top_p=top_p,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                seed=seed,
            )
        return results, tokens > limit
