"""The real bundled model (all-MiniLM-L6-v2): quality on real STS-B pairs."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.datasets import read_sts
from app.encoding.bert import BertEncoder
from app.evaluation.sts import spearman_x100
from app.similarity.metrics import cos_sim, pairwise_cos_sim
from tests.conftest import STS_SAMPLE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoder() -> BertEncoder:
    return BertEncoder("all-MiniLM-L6-v2", pooling="mean", device="cpu")


def test_default_model_ranks_sts_pairs(encoder: BertEncoder) -> None:
    # First 300 pairs of the STS-B test set, copied into tests/data.
    pairs = read_sts(STS_SAMPLE)
    assert len(pairs) == 300
    scores = pairwise_cos_sim(encoder.encode(pairs.sentences1), encoder.encode(pairs.sentences2))
    assert spearman_x100(scores, pairs.scores) >= 75.0


def test_paraphrase_is_the_top_hit(encoder: BertEncoder) -> None:
    corpus = [
        "A man is playing a guitar.",
        "A woman is slicing tomatoes.",
        "The stock market fell sharply today.",
        "Two dogs are running through a field.",
    ]
    query = encoder.encode(["Someone is cutting up a tomato."])
    assert int(np.argmax(cos_sim(query, encoder.encode(corpus)))) == 1


def test_matches_sentence_transformers(encoder: BertEncoder) -> None:
    # The peer implementation of the same model: normalised vectors agree.
    st = pytest.importorskip("sentence_transformers")
    from app.encoding.registry import resolve_model

    model = st.SentenceTransformer(resolve_model("all-MiniLM-L6-v2").path, device="cpu")
    sentences = read_sts(STS_SAMPLE).sentences1[:64]
    ours = encoder.encode(sentences)
    theirs = model.encode(sentences, normalize_embeddings=True)
    np.testing.assert_allclose(
        ours / np.linalg.norm(ours, axis=1, keepdims=True), theirs, atol=1e-5
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_explanations_are_complete_on_real_pairs(precision: str) -> None:
    from app.encoding.attribution import explain_similarity

    encoder = BertEncoder("all-MiniLM-L6-v2", precision=precision, device="cpu")
    pairs = read_sts(STS_SAMPLE)
    for i in range(0, 300, 60):  # 5 pairs, low to high gold scores
        a, b = pairs.sentences1[i], pairs.sentences2[i]
        explanation = explain_similarity(encoder, a, b, n_steps=50)
        gap = abs(explanation.score - explanation.baseline_score)
        assert gap > 0.01, (a, b)
        assert explanation.completeness_error <= 0.01 * gap, (a, b, explanation)
        total = sum(t.attribution for t in explanation.source + explanation.target)
        assert abs(total - (explanation.score - explanation.baseline_score)) <= 0.01 * gap
