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


def _truncated_reference(folder: Path, sentences: list[str], max_length: int) -> np.ndarray:
    """Mean pooling over the tokenizer's own truncation, one sentence at a time."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    rows = []
    with torch.no_grad():
        for s in sentences:
            inputs = tokenizer([s], truncation=True, max_length=max_length, return_tensors="pt")
            rows.append(model(**inputs).last_hidden_state[0].mean(0).numpy())
    return np.stack(rows)


def test_encode_with_lengths_counts_before_truncation_and_cuts_as_the_tokenizer(
    tiny_bert_dir: Path,
) -> None:
    encoder = BertEncoder(str(tiny_bert_dir), max_seq_length=7, device="cpu", batch_size=2)
    texts = ["a man plays a guitar in the park with a dog", "a dog", "", "the cat eats food"]
    encoded = encoder.encode_with_lengths(texts, token_embeddings=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    assert encoded.lengths.tolist() == [len(tokenizer(t)["input_ids"]) for t in texts]
    assert encoded.lengths[0] > 7  # the first one is cut
    np.testing.assert_allclose(
        encoded.vectors, _truncated_reference(tiny_bert_dir, texts, 7), atol=1e-5
    )
    assert encoded.token_embeddings is not None
    for got, want in zip(encoded.token_embeddings, encoder.encode_tokens(texts), strict=True):
        np.testing.assert_array_equal(got, want)
    assert [len(t) for t in encoded.token_embeddings] == [
        5,
        2,
        0,
        4,
    ]  # specials dropped, cut to 7 - 2
    halves = [encoded[0:2], encoded[2:4]]
    joined = type(encoded).concat(halves)
    np.testing.assert_array_equal(joined.vectors, encoded.vectors)
    np.testing.assert_array_equal(joined.lengths, encoded.lengths)


def test_token_budget_cuts_batches_by_padded_tokens(
    tiny_bert_dir: Path, tiny_encoder: BertEncoder, sentences: list[str]
) -> None:
    budget = BertEncoder(str(tiny_bert_dir), device="cpu", batch_size=64, max_batch_tokens=24)
    calls: list[tuple[int, int]] = []
    forward = budget._forward

    def recording(batch, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(tuple(batch.input_ids.shape))
        return forward(batch, **kwargs)

    budget._forward = recording  # type: ignore[method-assign]
    vectors = budget.encode(sentences)
    np.testing.assert_allclose(vectors, tiny_encoder.encode(sentences), atol=1e-5)
    assert sum(rows for rows, _ in calls) == len(sentences)
    longest = max(width for _, width in calls)
    # within the budget, except a sentence longer than the budget alone
    assert all(rows * width <= 24 or rows == 1 for rows, width in calls)
    assert len(calls) > 1 and longest > 1


def test_auto_precision_says_what_it_chose_and_why(tiny_bert_dir: Path) -> None:
    from app.encoding.precision import bf16_unavailable

    encoder = BertEncoder(str(tiny_bert_dir), precision="auto", device="cpu")
    reason = bf16_unavailable(torch.device("cpu"))
    if reason is None:  # this CPU has native bf16: chosen when the vectors agree
        assert encoder.precision in ("bf16", "fp32")
        assert "calibration sentences" in encoder.precision_reason
    else:
        assert encoder.precision == "fp32" and encoder.precision_reason == reason
    fixed = BertEncoder(str(tiny_bert_dir), precision="fp32", device="cpu")
    assert fixed.precision_reason == "asked for"


def test_auto_refuses_bf16_when_the_vectors_move(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.encoding.bert as bert

    monkeypatch.setattr(bert, "bf16_unavailable", lambda device: None)
    monkeypatch.setattr(bert, "MIN_COSINE", 1.01)  # no bf16 vector can be that close
    encoder = BertEncoder(str(tiny_bert_dir), precision="auto", device="cpu")
    assert encoder.precision == "fp32"
    assert "bf16 would move vectors" in encoder.precision_reason
    monkeypatch.setattr(bert, "MIN_COSINE", -1.0)
    assert BertEncoder(str(tiny_bert_dir), precision="auto", device="cpu").precision == "bf16"


def test_bf16_weights_give_what_autocast_gives(tiny_bert_dir: Path, sentences: list[str]) -> None:
    encoder = BertEncoder(str(tiny_bert_dir), precision="bf16", device="cpu")
    linear = next(m for m in encoder.model.modules() if isinstance(m, torch.nn.Linear))
    assert linear.weight.dtype == torch.bfloat16  # cast once, not per call
    reference = BertEncoder(str(tiny_bert_dir), precision="fp32", device="cpu")
    reference.precision = "bf16"  # autocast over the fp32 weights
    np.testing.assert_allclose(encoder.encode(sentences), reference.encode(sentences), atol=1e-6)


def test_pad_to_multiple_of_rounds_widths_and_changes_no_vector(
    tiny_bert_dir: Path, tiny_encoder: BertEncoder, sentences: list[str]
) -> None:
    padded = BertEncoder(str(tiny_bert_dir), device="cpu", batch_size=4, pad_to_multiple_of=8)
    widths: list[int] = []
    forward = padded._forward

    def recording(batch, **kwargs):  # type: ignore[no-untyped-def]
        widths.append(batch.input_ids.shape[1])
        return forward(batch, **kwargs)

    padded._forward = recording  # type: ignore[method-assign]
    np.testing.assert_allclose(padded.encode(sentences), tiny_encoder.encode(sentences), atol=1e-5)
    assert widths and all(w % 8 == 0 for w in widths)
    for got, want in zip(
        padded.encode_tokens(sentences), tiny_encoder.encode_tokens(sentences), strict=True
    ):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_traced_model_gives_what_eager_gives(
    tiny_bert_dir: Path, sentences: list[str], precision: str
) -> None:
    traced = BertEncoder(str(tiny_bert_dir), device="cpu", precision=precision, jit=True)
    eager = BertEncoder(str(tiny_bert_dir), device="cpu", precision=precision)
    assert traced.jit and not eager.jit
    for size in (1, 3, 64):  # one row, padded batches, one long batch
        np.testing.assert_allclose(
            traced.encode(sentences, batch_size=size),
            eager.encode(sentences, batch_size=size),
            atol=1e-5,
        )
    for got, want in zip(
        traced.encode_tokens(sentences), eager.encode_tokens(sentences), strict=True
    ):
        np.testing.assert_allclose(got, want, atol=1e-5)
    hidden = traced.with_pooling("first_last_avg")  # needs every layer: eager
    np.testing.assert_allclose(
        hidden.encode(sentences), eager.with_pooling("first_last_avg").encode(sentences), atol=1e-5
    )


def test_a_trace_that_disagrees_with_eager_is_not_used(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import app.encoding.tracing as bert

    real = bert._LastHidden.forward

    def shifted(self, input_ids, attention_mask):  # type: ignore[no-untyped-def]
        return real(self, input_ids, attention_mask) + 1.0  # what a wrong trace would give

    monkeypatch.setattr(bert._LastHidden, "forward", shifted)
    with caplog.at_level("WARNING"):
        encoder = BertEncoder(str(tiny_bert_dir), device="cpu", jit=True)
    assert not encoder.jit
    assert "disagrees" in caplog.text
