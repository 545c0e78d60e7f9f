"""SimBERT: the UniLM mask, both losses, training a tiny BERT, generation, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.generation.model import (
    retrieval_loss,
    seq2seq_attention_mask,
    seq2seq_loss,
    seq2seq_targets,
)
from app.generation.sampling import SimBertGenerator
from app.training.simbert import TrainConfig, train_simbert


def test_unilm_mask_for_a_padded_batch() -> None:
    token_types = torch.tensor([[0, 0, 0, 1, 1, 0], [0, 0, 1, 1, 1, 1]])
    attention = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    mask = seq2seq_attention_mask(token_types, attention)
    for k in range(2):
        for i in range(6):
            if not attention[k, i]:
                continue  # a padding query's output is never used
            for j in range(6):
                source_key = token_types[k, j] == 0
                causal_target = token_types[k, i] == 1 and token_types[k, j] == 1 and j <= i
                expected = bool(attention[k, j]) and bool(source_key or causal_target)
                assert bool(mask[k, i, j]) == expected, (k, i, j)
    # Spelled out for the first row: sources see only sources, targets see sources + the past.
    assert mask[0, :5, :5].int().tolist() == [
        [1, 1, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
    ]


def test_targets_are_the_next_target_tokens_only() -> None:
    ids = torch.tensor([[101, 7, 8, 102, 9, 10, 102, 0]])  # [CLS] a a [SEP] b b [SEP] pad
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 0]])
    attention = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0]])
    labels = seq2seq_targets(ids, types, attention)
    assert labels.tolist() == [[-100, -100, -100, 9, 10, 102, -100, -100]]


def test_seq2seq_loss_counts_target_positions_only() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 8, 20)
    labels = torch.tensor([[-100, -100, -100, 3, 4, 5, -100, -100]])
    changed = logits.clone()
    changed[0, :3] = torch.randn(3, 20) * 100  # garbage where nothing is predicted
    assert seq2seq_loss(changed, labels) == pytest.approx(float(seq2seq_loss(logits, labels)))
    log_probs = torch.log_softmax(logits[0, 3:6], dim=-1)
    expected = -float(log_probs[[0, 1, 2], [3, 4, 5]].mean())
    assert float(seq2seq_loss(logits, labels)) == pytest.approx(expected, abs=1e-6)


def test_retrieval_loss_equals_a_numpy_computation() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 8))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    logits = 30 * unit @ unit.T
    np.fill_diagonal(logits, -1e12)
    log_softmax = (
        logits
        - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
        - logits.max(1, keepdims=True)
    )
    partners = [1, 0, 3, 2, 5, 4]
    expected = -np.mean(log_softmax[np.arange(6), partners])
    got = float(retrieval_loss(torch.tensor(vectors, dtype=torch.float32)))
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_training_lowers_both_losses(tiny_simbert) -> None:  # type: ignore[no-untyped-def]
    _, report, _ = tiny_simbert
    assert report.steps == 300
    # Stated factors: the last 20 steps' mean is below 0.7x (seq2seq) and 0.8x (retrieval)
    # the first 20 steps' (measured: 0.59x and 0.71x; training is seeded).
    assert report.seq2seq_losses[-1] < 0.7 * report.seq2seq_losses[0]
    assert report.retrieval_losses[-1] < 0.8 * report.retrieval_losses[0]


@pytest.mark.slow
def test_generation_is_terminated_distinct_and_seeded(tiny_simbert) -> None:  # type: ignore[no-untyped-def]
    out, _, pairs = tiny_simbert
    generator = SimBertGenerator.load(str(out), device="cpu")
    text = pairs[0][0]
    results = generator.generate(
        text, num_candidates=16, num_return_sequences=3, max_new_tokens=24, seed=0
    )
    assert len(results) == 3
    texts = [r.text for r in results]
    assert len(set(texts)) == 3 and all(t.strip() for t in texts)
    assert all(" ".join(t.lower().split()) != " ".join(text.lower().split()) for t in texts)
    assert all("[SEP]" not in t and "[CLS]" not in t for t in texts)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    again = generator.generate(
        text, num_candidates=16, num_return_sequences=3, max_new_tokens=24, seed=0
    )
    assert again == results


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(
    tiny_simbert, tiny_bert_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, _, pairs = tiny_simbert
    config = TrainConfig(
        batch_size=16, max_steps=4, warmup_steps=1, checkpoint_every=2, max_length=16
    )
    train_simbert(pairs, str(tiny_bert_dir), tmp_path, config, device="cpu")
    longer = TrainConfig(
        batch_size=16, max_steps=6, warmup_steps=1, checkpoint_every=2, max_length=16
    )
    report = train_simbert(pairs, str(tiny_bert_dir), tmp_path, longer, resume=True, device="cpu")
    assert report.steps == 6
    assert (tmp_path / "checkpoint" / "optimizer.safetensors").is_file()
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))


@pytest.mark.slow
def test_cached_decoding_equals_recomputation(tiny_simbert) -> None:  # type: ignore[no-untyped-def]
    # At a near-zero temperature sampling is the argmax, whatever the random stream: the
    # key/value cache must then produce exactly what recomputing every step produces.
    folder, _, pairs = tiny_simbert
    generator = SimBertGenerator.load(str(folder), device="cpu")
    kwargs = {
        "num_candidates": 4,
        "num_return_sequences": 4,
        "temperature": 0.01,
        "max_new_tokens": 12,
    }
    for text in (pairs[0][0], pairs[1][0]):
        cached = generator.generate(text, seed=0, use_cache=True, **kwargs)
        recomputed = generator.generate(text, seed=0, use_cache=False, **kwargs)
        assert [p.text for p in cached] == [p.text for p in recomputed]
        np.testing.assert_allclose(
            [p.score for p in cached], [p.score for p in recomputed], atol=1e-5
        )


@pytest.mark.slow
def test_top_k_is_the_token_cut_off(tiny_simbert) -> None:  # type: ignore[no-untyped-def]
    # top_k=1 keeps only the most probable token at each step (and [SEP]): the candidates
    # can then differ only where [SEP] was drawn, so far fewer distinct ones come out than
    # from unrestricted sampling with the same seed.
    folder, _, pairs = tiny_simbert
    generator = SimBertGenerator.load(str(folder), device="cpu")
    kwargs = {"num_candidates": 16, "num_return_sequences": 16, "max_new_tokens": 12, "seed": 0}
    greedy = generator.generate(pairs[0][0], top_k=1, top_p=1.0, **kwargs)
    free = generator.generate(pairs[0][0], top_k=0, top_p=1.0, **kwargs)
    assert len(free) > len(greedy)
    texts = [p.text.split() for p in greedy]
    shortest = min(texts, key=len)
    assert all(t[: len(shortest)] == shortest for t in texts)  # one greedy path, cut anywhere
