"""Why two sentences are similar: integrated gradients of their cosine over the input tokens.

Integrated gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks",
ICML 2017) attributes a score F to each input feature by integrating the gradient along the
straight path from a baseline x' to the input x:

    attribution_i = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x')) / dx_i da

Here x is the pair's word-piece embeddings (both sentences move along the path together), F is
the cosine of their pooled sentence vectors, and the baseline replaces every word piece by
[PAD] while [CLS]/[SEP] stay. Summed over the hidden dimension, each token gets one number;
together they add up to F(x) - F(x') (completeness), which ``completeness_error`` reports. The
integral is captum's ``IntegratedGradients`` (Gauss-Legendre quadrature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import torch

from app.core.errors import ConflictError
from app.encoding.pooling import needs_hidden_states, pool

if TYPE_CHECKING:
    from app.encoding.bert import BertEncoder

#: Tokens (path points x both sentences' tokens) per forward/backward pass of the integral:
#: bounds the memory of long pairs (two 512-token sentences: 8 points at a time).
_PATH_TOKENS = 8192

#: What the baseline is, as the API states it.
BASELINE = "[PAD] embeddings in place of every word piece; [CLS] and [SEP] kept"


@dataclass(frozen=True)
class TokenAttribution:
    """One token's share of a similarity score.

    Attributes:
        token: A word piece as the tokenizer writes it (``##ing``), or a word of the input
            text when word pieces are merged.
        attribution: Its share of ``score - baseline_score``, in cosine units: positive
            raised the similarity, negative lowered it.
    """

    token: str
    attribution: float


@dataclass(frozen=True)
class Explanation:
    """What ``explain_similarity`` returns.

    Attributes:
        score: Cosine of the two sentences' pooled vectors, in [-1, 1], higher is more similar.
        baseline_score: The same cosine for the baseline inputs.
        baseline: What the baseline inputs are (``BASELINE``).
        source, target: Attributions of each sentence's tokens ([CLS]/[SEP] left out: they
            are the same in input and baseline, so theirs is 0).
        completeness_error: |sum of all attributions - (score - baseline_score)|: how far the
            quadrature is from the exact integral (more ``n_steps``, less error).
        lengths: Tokens of each sentence (source, target) before truncation, special tokens
            included (over the encoder's ``max_seq_length``: the sentence was cut).
    """

    score: float
    baseline_score: float
    baseline: str
    source: list[TokenAttribution]
    target: list[TokenAttribution]
    completeness_error: float
    lengths: tuple[int, int]


def explain_similarity(
    encoder: BertEncoder,
    source_sentence: str,
    sentence: str,
    *,
    n_steps: int = 50,
    merge_words: bool = False,
) -> Explanation:
    """Attribute the cosine of two sentences to their tokens by integrated gradients.

    Runs the encoder's own model (eager, its precision: bf16 autocast where it serves bf16)
    with its pooling, on raw sentence vectors (no whitening or flow). Costs about
    ``2 * n_steps`` sentence forward and backward passes.

    Args:
        encoder: A loaded float (fp32 or bf16) ``BertEncoder``.
        source_sentence, sentence: The pair; each is cut to ``encoder.max_seq_length``.
        n_steps: Quadrature points of the path integral (>= 1).
        merge_words: Sum word pieces into the words of the text (needs a fast tokenizer).

    Returns:
        The scores, per-token attributions (float, cosine units) and the completeness error.

    Raises:
        ValueError: ``n_steps`` < 1.
        ConflictError: The encoder is int8 (quantized layers have no gradients) or its
            tokenizer cannot map word pieces to words when ``merge_words`` asks it to.
    """
    from captum.attr import IntegratedGradients

    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if encoder.precision == "int8":
        raise ConflictError(
            "explanations need gradients, which int8 (dynamically quantized) layers do not "
            "have: serve this model at precision fp32, bf16 or auto"
        )
    if merge_words and not encoder.tokenizer.is_fast:
        raise ConflictError("merge_words needs a fast (Rust) tokenizer; this model has none")
    sides = [_tokenize(encoder, text) for text in (source_sentence, sentence)]
    embeddings: torch.nn.Module = encoder.model.get_input_embeddings()  # type: ignore[operator]
    pad_id = encoder.tokenizer.pad_token_id or 0
    hidden = needs_hidden_states(encoder.pooling)

    def pooled(inputs_embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        rows = inputs_embeds.shape[0]
        out = encoder.model(
            inputs_embeds=inputs_embeds,
            attention_mask=mask.expand(rows, -1),
            output_hidden_states=hidden,
        )
        states = out.hidden_states if hidden else None
        return pool(encoder.pooling, mask.expand(rows, -1), out.last_hidden_state, states)

    masks = [
        torch.ones(1, len(side.ids), dtype=torch.int64, device=encoder.device) for side in sides
    ]

    def cosine(source_embeds: torch.Tensor, target_embeds: torch.Tensor) -> torch.Tensor:
        a = pooled(source_embeds, masks[0]).float()
        b = pooled(target_embeds, masks[1]).float()
        return torch.nn.functional.cosine_similarity(a, b, dim=-1)

    inputs, baselines = [], []
    for side in sides:
        ids = torch.tensor([side.ids], device=encoder.device)
        base = torch.where(torch.from_numpy(side.special).to(encoder.device), ids, pad_id)
        with torch.no_grad():
            inputs.append(embeddings(ids).detach())
            baselines.append(embeddings(base).detach())
    with torch.enable_grad(), encoder.autocast():
        attributions, delta = IntegratedGradients(cosine).attribute(
            tuple(inputs),
            baselines=tuple(baselines),
            n_steps=n_steps,
            internal_batch_size=max(
                1, min(n_steps, _PATH_TOKENS // sum(len(s.ids) for s in sides))
            ),
            return_convergence_delta=True,
        )
        with torch.no_grad():
            score = float(cosine(*inputs))
            baseline_score = float(cosine(*baselines))
    per_token = [a[0].float().sum(-1).detach().cpu().numpy() for a in attributions]
    return Explanation(
        score=score,
        baseline_score=baseline_score,
        baseline=BASELINE,
        source=_rows(encoder, sides[0], per_token[0], merge_words),
        target=_rows(encoder, sides[1], per_token[1], merge_words),
        completeness_error=abs(float(delta.sum())),
        lengths=(sides[0].length, sides[1].length),
    )


@dataclass(frozen=True)
class _Tokenized:
    text: str
    ids: list[int]
    special: npt.NDArray[np.bool_]  # (n_tokens,) [CLS]/[SEP]
    word_spans: list[tuple[int, int]] | None  # per word, its character span in ``text``
    word_of: list[int | None] | None  # per token, its word index (None: special)
    length: int  # tokens before truncation


def _tokenize(encoder: BertEncoder, text: str) -> _Tokenized:
    tokenizer = encoder.tokenizer
    fast = tokenizer.is_fast
    encoded = tokenizer(
        text,
        truncation=True,
        max_length=encoder.max_seq_length,
        return_special_tokens_mask=True,
        return_overflowing_tokens=False,
        return_offsets_mapping=fast,
    )
    full = len(tokenizer(text, return_attention_mask=False)["input_ids"])
    ids: list[int] = encoded["input_ids"]
    word_of: list[int | None] | None = None
    spans: list[tuple[int, int]] | None = None
    if fast:
        word_of = list(encoded.word_ids())
        spans = []
        for word, (start, end) in zip(word_of, encoded["offset_mapping"], strict=True):
            if word is None:
                continue
            while len(spans) <= word:
                spans.append((start, end))
            spans[word] = (min(spans[word][0], start), max(spans[word][1], end))
    return _Tokenized(
        text=text,
        ids=ids,
        special=np.asarray(encoded["special_tokens_mask"], dtype=bool),
        word_spans=spans,
        word_of=word_of,
        length=full,
    )


def _rows(
    encoder: BertEncoder,
    side: _Tokenized,
    attribution: npt.NDArray[np.float32],
    merge_words: bool,
) -> list[TokenAttribution]:
    """Per word piece (or per word), special tokens left out."""
    keep = ~side.special
    if not merge_words:
        pieces: Sequence[str] = encoder.tokenizer.convert_ids_to_tokens(side.ids)
        return [
            TokenAttribution(str(p), float(a))
            for p, a, k in zip(pieces, attribution, keep, strict=True)
            if k
        ]
    assert side.word_of is not None and side.word_spans is not None
    totals: dict[int, float] = {}
    for word, a, k in zip(side.word_of, attribution, keep, strict=True):
        if k and word is not None:
            totals[word] = totals.get(word, 0.0) + float(a)
    return [
        TokenAttribution(side.text[slice(*side.word_spans[w])], total)
        for w, total in totals.items()
    ]
