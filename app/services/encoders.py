"""Building encoders from explicit options, and encoding with de-duplication."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.core.errors import ConflictError
from app.core.types import Embeddings
from app.encoding.base import Encoder
from app.encoding.registry import DEFAULT_MODEL, resolve_model

if TYPE_CHECKING:
    from app.encoding.attribution import Explanation


@dataclass(frozen=True)
class EncoderOptions:
    """Constructor arguments of ``BertEncoder`` (see its docstring for each)."""

    model: str = DEFAULT_MODEL
    pooling: str = "mean"
    precision: str = "fp32"
    max_seq_length: int | None = None
    device: str | None = None
    num_threads: int | None = None
    batch_size: int = 32
    max_batch_tokens: int | None = None
    pad_to_multiple_of: int | None = None
    jit: bool = False
    allow_pickle: bool = False


def load_encoder(options: EncoderOptions) -> Encoder:
    """Load a ``BertEncoder`` (torch is imported here, on first use, once the model's files are
    known to be there: ``resolve_model`` runs first).

    Raises:
        ModelLoadError, ModelIntegrityError, InputValidationError: As ``BertEncoder``.
    """
    resolve_model(options.model)  # a missing folder or an unreachable Hub id: before torch
    from app.encoding.bert import BertEncoder

    kwargs = asdict(options)
    return BertEncoder(kwargs.pop("model"), **kwargs)


def explain(
    encoder: Encoder,
    source_sentence: str,
    sentence: str,
    *,
    n_steps: int = 50,
    merge_words: bool = False,
) -> Explanation:
    """Integrated-gradients attribution of a pair's cosine to its tokens
    (``app.encoding.attribution.explain_similarity``; torch and captum load here).

    Raises:
        ConflictError: ``encoder`` is not a ``BertEncoder``, or as ``explain_similarity``.
        ValueError: ``n_steps`` < 1.
    """
    from app.encoding.attribution import explain_similarity
    from app.encoding.bert import BertEncoder

    if not isinstance(encoder, BertEncoder):
        raise ConflictError(f"{type(encoder).__name__} models cannot be explained here")
    return explain_similarity(
        encoder, source_sentence, sentence, n_steps=n_steps, merge_words=merge_words
    )


def encode_unique(
    encoder: Encoder, sentences: Sequence[str], show_progress_bar: bool = False
) -> Embeddings:
    """Encode each distinct sentence once and return float32 vectors (n, d) in input order."""
    index: dict[str, int] = {}
    inverse = np.fromiter(
        (index.setdefault(s, len(index)) for s in sentences), dtype=np.int64, count=len(sentences)
    )
    return encoder.encode(list(index), show_progress_bar=show_progress_bar)[inverse]


def iter_encoded(
    encoder: Encoder, sentences: Sequence[str], chunk: int = 16384, show_progress_bar: bool = False
) -> Iterator[Embeddings]:
    """Yield float32 vectors (<= chunk, d) chunk by chunk, so a large corpus streams."""
    for start in range(0, len(sentences), chunk):
        yield encoder.encode(sentences[start : start + chunk], show_progress_bar=show_progress_bar)
