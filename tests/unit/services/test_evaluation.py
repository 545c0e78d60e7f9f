"""The STS grid service, on the tiny BERT."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.core.datasets import read_sts
from app.encoding.bert import BertEncoder
from app.evaluation.sts import spearman_x100
from app.services.encoders import EncoderOptions, encode_unique
from app.services.evaluation import evaluate_encoder, evaluate_sts_grid
from app.transforms.spec import parse_transform_spec
from app.transforms.whitening import Whitening
from tests.conftest import STS_SAMPLE


def test_encode_unique_equals_plain_encode(tiny_encoder: BertEncoder) -> None:
    sentences = ["the dog", "a cat", "the dog", "a man", "a cat"]
    np.testing.assert_allclose(
        encode_unique(tiny_encoder, sentences), tiny_encoder.encode(sentences), atol=1e-5
    )


def test_evaluate_encoder_matches_a_direct_computation(tiny_encoder: BertEncoder) -> None:
    pairs = read_sts(STS_SAMPLE)
    specs = [parse_transform_spec("none"), parse_transform_spec("whitening-16")]
    none, white = evaluate_encoder(tiny_encoder, pairs, specs)
    a, b = tiny_encoder.encode(pairs.sentences1), tiny_encoder.encode(pairs.sentences2)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    # The tiny random model's cosines crowd near 0.98, so float noise of 1e-6 between batchings
    # can swap a few ranks: agree to 0.05 Spearman points.
    assert abs(none.spearman - spearman_x100(cosine, pairs.scores)) < 0.05
    # Whitening fitted on all 2n evaluated sentences, duplicates kept (the paper's protocol).
    w = Whitening(16).fit(np.vstack([a, b]))
    ta, tb = w.transform(a), w.transform(b)
    cosine_w = (ta * tb).sum(1) / np.linalg.norm(ta, axis=1) / np.linalg.norm(tb, axis=1)
    assert abs(white.spearman - spearman_x100(cosine_w, pairs.scores)) < 0.05
    assert (white.n_components, white.fit_on, none.fit_on) == (16, "evaluated", None)


def test_grid_covers_every_combination(tiny_bert_dir: Path) -> None:
    pairs = read_sts(STS_SAMPLE)
    results = evaluate_sts_grid(
        pairs,
        EncoderOptions(model=str(tiny_bert_dir), device="cpu"),
        poolings=["cls", "mean"],
        precisions=["fp32", "int8"],
        specs=[parse_transform_spec("none")],
    )
    assert [(r.precision, r.pooling) for r in results] == [
        ("fp32", "cls"),
        ("fp32", "mean"),
        ("int8", "cls"),
        ("int8", "mean"),
    ]


def test_transport_rows_match_a_direct_computation(
    tiny_encoder: BertEncoder, tiny_bert_dir: Path
) -> None:
    from app.similarity.ot import word_rotators_distance

    pairs = read_sts(STS_SAMPLE)
    results = evaluate_sts_grid(
        pairs,
        EncoderOptions(model=str(tiny_bert_dir), device="cpu"),
        poolings=["mean"],
        precisions=["fp32"],
        specs=[parse_transform_spec("none")],
        methods=["cosine", "wrd"],
    )
    assert [(r.method, r.pooling) for r in results] == [("cosine", "mean"), ("wrd", "tokens")]
    a = tiny_encoder.encode_tokens(pairs.sentences1)
    b = tiny_encoder.encode_tokens(pairs.sentences2)
    scores = [1 - word_rotators_distance(x, y).distance for x, y in zip(a, b, strict=True)]
    assert abs(results[1].spearman - spearman_x100(scores, pairs.scores)) < 0.05


def test_spectra_flatten_under_full_whitening(tiny_bert_dir: Path) -> None:
    pairs = read_sts(STS_SAMPLE)
    rows = evaluate_sts_grid(
        pairs,
        EncoderOptions(model=str(tiny_bert_dir), device="cpu"),
        poolings=["mean"],
        precisions=["fp32"],
        specs=[parse_transform_spec("none"), parse_transform_spec("whitening")],
    )
    raw, white = rows[0].spectrum, rows[1].spectrum
    assert raw is not None and white is not None and len(raw) == len(white) == 32
    assert raw[0] / raw[-1] > 10  # anisotropic: a few directions dominate
    # Whitened on these very vectors: unit variance in every direction the data spans (one the
    # tiny model's vectors do not span stays ~0).
    assert np.mean(np.abs(white - 1.0) < 0.05) >= 0.9 and white.max() < 1.05
    for row in rows:
        assert row.scores is not None and len(row.scores) == len(pairs)
        assert "scores" not in row.to_json() and "spectrum" not in row.to_json()
