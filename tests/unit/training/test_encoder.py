"""train_encoder on the tiny BERT: the loss falls with both losses, resume continues, and the
output folder loads where every model loads (BertEncoder, so ``sentsim serve``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.errors import EmptyInputError, InputValidationError
from app.encoding.bert import BertEncoder
from app.main import create_app
from app.training.encoder import EncoderTrainConfig, train_encoder

SUBJECTS = ["a man", "a woman", "the dog", "the cat", "a child", "two people", "a boy", "a girl"]
ACTIONS = [
    ("plays the guitar", "is playing a guitar"),
    ("eats food", "is eating food"),
    ("rides a horse", "is riding a horse"),
    ("runs on the beach", "is running on the beach"),
    ("sings a song", "is singing a song"),
    ("drives a car", "is driving a car"),
    ("sits in the park", "is sitting in the park"),
    ("talks on the phone", "is talking on the phone"),
]
#: 64 paraphrase pairs: the same subject and action, said two ways.
POSITIVES = [(f"{s} {a}", f"{s} {b}", 5.0) for s, (a, b) in itertools.product(SUBJECTS, ACTIONS)]
#: Graded pairs for CoSENT: paraphrases 5, same subject other action 2, nothing shared 0.
GRADED = (
    POSITIVES[::2]
    + [
        (f"{s} {a}", f"{t} {b}", 2.0 if s == t else 0.0)
        for (s, (a, _)), (t, (_, b)) in zip(
            itertools.product(SUBJECTS, ACTIONS),
            itertools.product(SUBJECTS[1:] + SUBJECTS[:1], ACTIONS[3:] + ACTIONS[:3]),
            strict=True,
        )
    ][::2]
)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _config(**changes: object) -> EncoderTrainConfig:
    base = {"batch_size": 16, "epochs": 6, "lr": 1e-3, "warmup_steps": 2, "max_length": 16}
    return EncoderTrainConfig(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("loss", "negatives", "examples"),
    [
        ("am-softmax", "partners", POSITIVES),
        ("am-softmax", "batch", POSITIVES),
        ("cosent", "partners", GRADED),
    ],
)
def test_the_loss_falls_on_a_small_pair_set(
    tiny_bert_dir: Path,
    tmp_path: Path,
    loss: str,
    negatives: str,
    examples: list[tuple[str, str, float]],
) -> None:
    config = _config(loss=loss, negatives=negatives)
    report = train_encoder(examples, str(tiny_bert_dir), tmp_path / "out", config, device="cpu")
    assert report.steps == 6 * (len(examples) // 16)
    assert report.losses[-1] < 0.75 * report.losses[0], report.losses  # falls by a quarter
    trained = BertEncoder(str(tmp_path / "out"), device="cpu")
    base = BertEncoder(str(tiny_bert_dir), device="cpu")

    def partner_margin(encoder: BertEncoder) -> float:
        """Mean cosine of paraphrases minus that of unrelated pairs."""
        a = _unit(encoder.encode([p[0] for p in POSITIVES]))
        b = _unit(encoder.encode([p[1] for p in POSITIVES]))
        cos = a @ b.T
        return float(np.mean(np.diag(cos)) - np.mean(cos[~np.eye(len(cos), dtype=bool)]))

    assert partner_margin(trained) > partner_margin(base) + 0.05


def test_the_output_round_trips_through_serve(tiny_bert_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "models" / "faq-encoder"
    train_encoder(POSITIVES, str(tiny_bert_dir), output, _config(epochs=1), device="cpu")
    assert (output / "model.safetensors").is_file() and (output / "training.json").is_file()
    assert not list(output.rglob("*.bin")) and not list(output.rglob("*.pt"))
    settings = Settings(
        jit=False,
        model=str(output),
        device="cpu",
        precision="fp32",
        models_dir=tmp_path / "models",
        indexes_dir=tmp_path / "indexes",
        generator="none",
        allowed_hosts=["testserver"],
    )
    sentences = ["a man plays the guitar", "the cat sits in the park"]
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/embeddings", json={"input": sentences, "model": "faq-encoder"})
        info = client.get("/info").json()
    assert response.status_code == 200, response.text
    served = np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)
    direct = _unit(BertEncoder(str(output), device="cpu").encode(sentences))
    np.testing.assert_allclose(served, direct, atol=1e-5)
    base = _unit(BertEncoder(str(tiny_bert_dir), device="cpu").encode(sentences))
    assert not np.allclose(served, base, atol=1e-3)  # it serves the trained weights
    assert info["model"].endswith("faq-encoder")


def test_resume_continues_from_the_checkpoint(tiny_bert_dir: Path, tmp_path: Path) -> None:
    train_encoder(POSITIVES, str(tiny_bert_dir), tmp_path, _config(epochs=1, checkpoint_every=2))
    report = train_encoder(
        POSITIVES, str(tiny_bert_dir), tmp_path, _config(epochs=2, checkpoint_every=2), resume=True
    )
    assert report.steps == 8 and len(report.losses) == 2  # steps 1-4 then 5-8, one window each
    assert (tmp_path / "checkpoint" / "optimizer.safetensors").is_file()


def test_bad_input_is_refused_before_loading_the_model(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError, match="choose am-softmax or cosent"):
        train_encoder(POSITIVES, "nowhere", tmp_path, _config(loss="triplet"))
    with pytest.raises(InputValidationError, match="choose partners or batch"):
        train_encoder(POSITIVES, "nowhere", tmp_path, _config(negatives="all"))
    with pytest.raises(InputValidationError, match="same score"):
        train_encoder(POSITIVES, "nowhere", tmp_path, _config(loss="cosent"))
    with pytest.raises(EmptyInputError, match="at least one batch"):
        train_encoder(POSITIVES[:3], "nowhere", tmp_path, _config())
    with pytest.raises(InputValidationError, match="nothing to resume"):
        train_encoder(POSITIVES, "nowhere", tmp_path, _config(), resume=True)
