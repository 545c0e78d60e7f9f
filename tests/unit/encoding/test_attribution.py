"""Integrated gradients of a pair's cosine: checked against an independent Riemann sum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.core.errors import ConflictError
from app.encoding.attribution import explain_similarity
from app.encoding.bert import BertEncoder

PAIR = ("the man plays a guitar", "a boy playing the piano")


def _riemann_attributions(
    encoder: BertEncoder, texts: tuple[str, str], steps: int
) -> list[np.ndarray]:
    """Per-token integrated gradients by a midpoint Riemann sum with plain autograd: its own
    tokenization, embedding lookup, model call and mean pooling, none of the code under test."""
    model, tokenizer = encoder.model, encoder.tokenizer
    encoded = [tokenizer(t, return_special_tokens_mask=True) for t in texts]
    table = model.get_input_embeddings().weight.detach()
    xs, bases = [], []
    for e in encoded:
        ids = torch.tensor(e["input_ids"])
        special = torch.tensor(e["special_tokens_mask"], dtype=torch.bool)
        xs.append(table[ids])
        bases.append(table[torch.where(special, ids, tokenizer.pad_token_id)])

    def vectors(embeds: torch.Tensor) -> torch.Tensor:  # (rows, L, H) -> (rows, H)
        return model(inputs_embeds=embeds).last_hidden_state.mean(1)

    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps  # midpoints
    points = [
        (b + alphas[:, None, None] * (x - b)[None]).requires_grad_(True)
        for x, b in zip(xs, bases, strict=True)
    ]
    scores = torch.nn.functional.cosine_similarity(vectors(points[0]), vectors(points[1]))
    grads = torch.autograd.grad(scores.sum(), points)
    total = [g.mean(0) for g in grads]
    return [((x - b) * t).sum(-1).numpy() for x, b, t in zip(xs, bases, total, strict=True)]


def test_attributions_equal_an_independent_riemann_sum(tiny_encoder: BertEncoder) -> None:
    explanation = explain_similarity(tiny_encoder, *PAIR, n_steps=50)
    expected = _riemann_attributions(tiny_encoder, PAIR, steps=1000)
    for side, reference in zip((explanation.source, explanation.target), expected, strict=True):
        got = np.array([t.attribution for t in side])
        inner = reference[1:-1]  # [CLS] and [SEP]: same in input and baseline, 0
        np.testing.assert_allclose(reference[[0, -1]], 0.0, atol=1e-12)
        scale = np.abs(inner).max()
        np.testing.assert_allclose(got, inner, atol=2e-3 * scale)
    assert [t.token for t in explanation.source] == tiny_encoder.tokenizer.tokenize(PAIR[0])


def test_completeness_and_scores(tiny_encoder: BertEncoder) -> None:
    explanation = explain_similarity(tiny_encoder, *PAIR, n_steps=50)
    vectors = tiny_encoder.encode(list(PAIR))
    cosine = vectors[0] @ vectors[1] / np.linalg.norm(vectors, axis=1).prod()
    assert explanation.score == pytest.approx(float(cosine), abs=1e-5)
    total = sum(t.attribution for t in explanation.source + explanation.target)
    gap = explanation.score - explanation.baseline_score
    assert explanation.completeness_error == pytest.approx(abs(total - gap), abs=1e-6)
    assert explanation.completeness_error <= 0.01 * abs(gap)
    assert "[PAD]" in explanation.baseline


def test_merged_words_sum_their_pieces(tiny_encoder: BertEncoder) -> None:
    source = "the girls cars"  # girl ##s, car ##s
    pieces = explain_similarity(tiny_encoder, source, PAIR[1], n_steps=20)
    words = explain_similarity(tiny_encoder, source, PAIR[1], n_steps=20, merge_words=True)
    assert [t.token for t in words.source] == ["the", "girls", "cars"]
    assert len(pieces.source) == 5
    got = [t.attribution for t in words.source]
    p = [t.attribution for t in pieces.source]
    np.testing.assert_allclose(got, [p[0], p[1] + p[2], p[3] + p[4]], atol=1e-7)


def test_lengths_before_truncation(tiny_bert_dir: Path) -> None:
    encoder = BertEncoder(str(tiny_bert_dir), max_seq_length=6, device="cpu")
    explanation = explain_similarity(encoder, "a man plays the red guitar", "a dog", n_steps=4)
    assert explanation.lengths == (8, 4)
    assert len(explanation.source) == 4  # 6 tokens kept, [CLS] and [SEP] left out


def test_refusals(tiny_bert_dir: Path, tiny_encoder: BertEncoder) -> None:
    with pytest.raises(ValueError, match="n_steps"):
        explain_similarity(tiny_encoder, *PAIR, n_steps=0)
    int8 = BertEncoder(str(tiny_bert_dir), precision="int8", device="cpu")
    with pytest.raises(ConflictError, match="int8"):
        explain_similarity(int8, *PAIR)
