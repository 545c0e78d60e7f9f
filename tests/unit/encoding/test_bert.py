"""BertEncoder on a tiny random BERT: batching, ordering, pooling, tokens, precisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from app.core.errors import InputValidationError, ModelLoadError
from app.encoding.bert import BertEncoder
from app.encoding.pooling import POOLING_MODES


def _reference(folder: Path, sentence: str, pooling: str) -> np.ndarray:
    """One sentence through transformers directly: no batching, no padding."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        out = model(**tokenizer([sentence], return_tensors="pt"), output_hidden_states=True)
    hs = [h[0].numpy() for h in out.hidden_states]
    return {
        "cls": hs[-1][0],
        "mean": hs[-1].mean(axis=0),
        "first_last_avg": ((hs[1] + hs[-1]) / 2).mean(axis=0),
        "last2avg": ((hs[-2] + hs[-1]) / 2).mean(axis=0),
    }[pooling]


def test_encode_shape_and_dtype(tiny_encoder: BertEncoder, sentences: list[str]) -> None:
    vectors = tiny_encoder.encode(sentences)
    assert vectors.shape == (len(sentences), tiny_encoder.dimension) == (len(sentences), 32)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()


@pytest.mark.parametrize("pooling", POOLING_MODES)
def test_batched_encoding_equals_unbatched_reference(
    tiny_bert_dir: Path, tiny_encoder: BertEncoder, sentences: list[str], pooling: str
) -> None:
    # Batches of 4 over length-sorted sentences, padded: each row must equal that sentence run
    # alone through transformers, in the caller's order.
    vectors = tiny_encoder.with_pooling(pooling).encode(sentences, batch_size=4)
    expected = np.stack([_reference(tiny_bert_dir, s, pooling) for s in sentences])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_vectors_do_not_depend_on_batch_size(
    tiny_encoder: BertEncoder, sentences: list[str]
) -> None:
    reference = tiny_encoder.encode(sentences, batch_size=1)
    for batch_size in (2, 3, 64):
        np.testing.assert_allclose(
            tiny_encoder.encode(sentences, batch_size=batch_size), reference, atol=1e-5
        )


def test_order_is_restored(tiny_encoder: BertEncoder, sentences: list[str]) -> None:
    forward = tiny_encoder.encode(sentences, batch_size=2)
    backward = tiny_encoder.encode(sentences[::-1], batch_size=2)
    np.testing.assert_allclose(backward[::-1], forward, atol=1e-5)


def test_encode_tokens_drops_special_tokens_and_padding(
    tiny_bert_dir: Path, tiny_encoder: BertEncoder, sentences: list[str]
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    tokens = tiny_encoder.encode_tokens(sentences, batch_size=3)
    assert len(tokens) == len(sentences)
    for sentence, got in zip(sentences, tokens, strict=True):
        with torch.no_grad():
            hidden = model(**tokenizer([sentence], return_tensors="pt")).last_hidden_state[0]
        expected = hidden[1:-1].numpy()  # drop [CLS] and [SEP]
        assert got.dtype == np.float32
        assert got.shape == (len(tokenizer.tokenize(sentence)), 32)
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_max_seq_length_truncates(tiny_bert_dir: Path) -> None:
    encoder = BertEncoder(str(tiny_bert_dir), max_seq_length=6, device="cpu")
    long_sentence = "a man plays a guitar in the park with a dog"
    (tokens,) = encoder.encode_tokens([long_sentence])
    assert tokens.shape[0] == 6 - 2  # room for [CLS] and [SEP]
    truncated = "a man plays a"  # the first four word pieces
    np.testing.assert_allclose(
        encoder.encode([long_sentence]), encoder.encode([truncated]), atol=1e-5
    )


def test_default_max_seq_length_is_capped_by_the_model(tiny_encoder: BertEncoder) -> None:
    assert tiny_encoder.max_seq_length == 128  # max_position_embeddings of the tiny model


def test_empty_input_gives_empty_array(tiny_encoder: BertEncoder) -> None:
    assert tiny_encoder.encode([]).shape == (0, 32)
    assert tiny_encoder.encode_tokens([]) == []


@pytest.mark.parametrize("bad", ["a single string", ["ok", 3]])
def test_bad_sentences_are_refused(tiny_encoder: BertEncoder, bad: object) -> None:
    with pytest.raises(InputValidationError):
        tiny_encoder.encode(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pooling": "max"}, "pooling"),
        ({"precision": "fp8"}, "precision"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_options_are_refused(tiny_bert_dir: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(InputValidationError, match=match):
        BertEncoder(str(tiny_bert_dir), **kwargs)


def test_with_pooling_shares_the_model(tiny_encoder: BertEncoder) -> None:
    other = tiny_encoder.with_pooling("cls")
    assert other.model is tiny_encoder.model and other.pooling == "cls"
    assert tiny_encoder.pooling == "mean"


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_stays_close_to_fp32(
    tiny_bert_dir: Path, tiny_encoder: BertEncoder, sentences: list[str], precision: str
) -> None:
    encoder = BertEncoder(str(tiny_bert_dir), precision=precision, device="cpu")
    assert encoder.precision == precision
    reduced, full = encoder.encode(sentences), tiny_encoder.encode(sentences)
    cosine = (
        (reduced * full).sum(1) / np.linalg.norm(reduced, axis=1) / np.linalg.norm(full, axis=1)
    )
    assert reduced.dtype == np.float32
    assert cosine.min() > 0.98


def test_pickle_weights_need_opt_in(tmp_path: Path, tiny_bert_dir: Path) -> None:
    # A checkpoint whose only weights are a pickle file (pytorch_model.bin).
    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny_bert_dir / name).read_bytes())
    state = AutoModel.from_pretrained(tiny_bert_dir).state_dict()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="only pickle-based weights.*--allow-pickle"):
        BertEncoder(str(folder), device="cpu")
    encoder = BertEncoder(str(folder), device="cpu", allow_pickle=True)
    reference = BertEncoder(str(tiny_bert_dir), device="cpu")
    np.testing.assert_allclose(
        encoder.encode(["the dog"]), reference.encode(["the dog"]), atol=1e-6
    )


def test_hub_id_offline_is_a_clear_error_at_once() -> None:
    # HF_HUB_OFFLINE=1 (conftest): refused before transformers is asked, naming the setting.
    with pytest.raises(ModelLoadError, match="'sentsim-tests/no-such-model'.*HF_HUB_OFFLINE"):
        BertEncoder("sentsim-tests/no-such-model", device="cpu")


def test_half_precision_checkpoint_loads_as_float32(tmp_path: Path, tiny_bert_dir: Path) -> None:
    folder = tmp_path / "fp16"
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(folder)
    AutoModel.from_pretrained(tiny_bert_dir).half().save_pretrained(folder)
    encoder = BertEncoder(str(folder), device="cpu")
    assert next(encoder.model.parameters()).dtype == torch.float32
    assert encoder.encode(["the dog"]).dtype == np.float32
