"""Fine-tuning a sentence encoder on a user's pairs: AM-Softmax over positive pairs, CoSENT over
graded ones (``app.training.losses``), AdamW with warm-up, resumable safetensors checkpoints.
The output folder is a Hugging Face checkpoint that ``BertEncoder`` (so ``sentsim serve
--model``) and sentence-transformers load."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from app.core.errors import EmptyInputError, InputValidationError
from app.encoding.bert import BertEncoder
from app.encoding.pooling import needs_hidden_states, pool
from app.training.loop import (
    PRECISIONS,
    LoopConfig,
    has_checkpoint,
    seed_everything,
    train_loop,
)
from app.training.losses import NEGATIVES, am_softmax_loss, cosent_loss, pair_groups

LOSSES = ("am-softmax", "cosent")
CHECKPOINT_DIR = "checkpoint"
TRAINING_RECORD = "training.json"
#: sentence-transformers' pooling modes for the poolings it has (others: no ST config).
_ST_POOLING = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token"}


@dataclass(frozen=True)
class EncoderTrainConfig:
    """Knobs of ``train_encoder``.

    Attributes:
        loss: ``am-softmax`` (positive pairs, in-batch negatives) or ``cosent`` (scored pairs).
        margin: AM-Softmax's m (cosine units).
        negatives: AM-Softmax's negatives: ``partners`` (the other pairs' other side) or
            ``batch`` (every other sentence of the batch); see ``am_softmax_loss``.
        scale: The loss's scale: AM-Softmax's s (30), CoSENT's lambda (20); ``None``: those.
        epochs: Passes over the pairs (the last incomplete batch of each is dropped).
        batch_size: Pairs per step.
        lr: AdamW's peak learning rate.
        warmup_steps: Linear warm-up steps, then linear decay to 0 at the last step.
        weight_decay: AdamW's decoupled weight decay (not on biases and LayerNorm).
        max_grad_norm: Gradient clipping.
        seed: Seeds the data order (and dropout).
        checkpoint_every: Steps between resumable checkpoints.
        precision: ``fp32`` or ``bf16`` (autocast).
        max_length: Tokens per sentence; ``None``: the base model's ``max_seq_length``.
    """

    loss: str = "am-softmax"
    margin: float = 0.35
    negatives: str = "partners"
    scale: float | None = None
    epochs: int = 1
    batch_size: int = 64
    lr: float = 2e-5
    warmup_steps: int = 100
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    precision: str = "fp32"
    max_length: int | None = None

    @property
    def loss_scale(self) -> float:
        """The scale in use: ``scale``, else 30 (AM-Softmax) or 20 (CoSENT)."""
        if self.scale is not None:
            return self.scale
        return 30.0 if self.loss == "am-softmax" else 20.0


@dataclass
class EncoderTrainReport:
    """Where training got to: steps, seconds, and the loss curve (means over windows of 20
    steps)."""

    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)


def _check(examples: Sequence[tuple[str, str, float]], config: EncoderTrainConfig) -> None:
    if config.loss not in LOSSES:
        raise InputValidationError(f"loss {config.loss!r}: choose {' or '.join(LOSSES)}")
    if config.negatives not in NEGATIVES:
        raise InputValidationError(
            f"negatives {config.negatives!r}: choose {' or '.join(NEGATIVES)}"
        )
    if config.precision not in PRECISIONS:
        raise InputValidationError(f"precision {config.precision!r}: choose fp32 or bf16")
    if config.batch_size < 2:
        raise InputValidationError("batch_size must be at least 2 (in-batch negatives, ranks)")
    if len(examples) < config.batch_size:
        raise EmptyInputError(
            f"{len(examples)} pairs; at least one batch of {config.batch_size} needed"
        )
    if config.loss == "cosent" and len({e[2] for e in examples}) < 2:
        raise InputValidationError(
            "CoSENT ranks pairs by their scores, and every pair has the same score; "
            "use --loss am-softmax for positive pairs"
        )


class _Trainee:
    """The model being trained: tokenizer, transformer and pooling, differentiable."""

    def __init__(self, encoder: BertEncoder, max_length: int) -> None:
        self.encoder = encoder
        self.model = encoder.model
        self.max_length = max_length

    def embed(self, sentences: list[str]) -> torch.Tensor:
        """Float tensor (n, d): the pooled vectors, with gradients."""
        batch = self.encoder.tokenizer(
            sentences,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.encoder.device)
        hidden = needs_hidden_states(self.encoder.pooling)
        out = self.model(**batch, output_hidden_states=hidden)
        states = out.hidden_states if hidden else None
        return pool(self.encoder.pooling, batch["attention_mask"], out.last_hidden_state, states)

    def save(self, folder: Path) -> None:
        """A Hugging Face checkpoint (safetensors) with the sentence-transformers files
        (``sentence_bert_config.json``; ``modules.json`` and the pooling config where ST has
        the pooling)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder, safe_serialization=True)  # type: ignore[operator]
        self.encoder.tokenizer.save_pretrained(folder)
        config = {"max_seq_length": self.max_length, "do_lower_case": False}
        (folder / "sentence_bert_config.json").write_text(json.dumps(config, indent=2), "utf-8")
        mode = _ST_POOLING.get(self.encoder.pooling)
        if mode is None:
            return
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
        ]
        (folder / "modules.json").write_text(json.dumps(modules, indent=2), "utf-8")
        (folder / "1_Pooling").mkdir(exist_ok=True)
        pooling: dict[str, Any] = {"word_embedding_dimension": self.encoder.dimension, mode: True}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2), "utf-8")


def train_encoder(
    examples: Sequence[tuple[str, str, float]],
    base: str,
    output: str | Path,
    config: EncoderTrainConfig = EncoderTrainConfig(),  # noqa: B008 (frozen dataclass)
    *,
    pooling: str = "mean",
    resume: bool = False,
    device: str | None = None,
    show_progress_bar: bool = False,
) -> EncoderTrainReport:
    """Fine-tune a BERT-family encoder on sentence pairs and save it to ``output``.

    AM-Softmax (``am_softmax_loss``) treats every pair as positive, its batch-mates as
    negatives (except those sharing a sentence with it: ``pair_groups``); CoSENT
    (``cosent_loss``) ranks pairs by their scores. Every ``checkpoint_every`` steps the model
    and AdamW's state go to ``output/checkpoint``; ``resume`` continues from there with the
    same data order.

    Args:
        examples: ``(sentence1, sentence2, score)``; the score counts for CoSENT only.
        base: The starting checkpoint (bundled name, local folder or Hub id).
        output: Folder of the trained encoder (``models/NAME``).
        config: The knobs.
        pooling: The pooling trained and served (``BertEncoder``'s).
        resume: Continue from ``output/checkpoint``.
        device: ``cpu``, ``cuda``...; ``None``: a GPU when present.
        show_progress_bar: tqdm with the loss.

    Returns:
        The report (steps, seconds, loss curve); also written to ``output/training.json``.

    Raises:
        InputValidationError: Unknown loss, negatives or precision, constant scores for
            CoSENT, resume without a checkpoint, or a diverged (non-finite) loss.
        EmptyInputError: Fewer pairs than one batch.
        ModelLoadError: The base cannot be loaded.
    """
    _check(examples, config)
    output = Path(output)
    checkpoint = output / CHECKPOINT_DIR
    if resume and not has_checkpoint(checkpoint):
        raise InputValidationError(f"nothing to resume: {checkpoint} has no checkpoint")
    seed_everything(config.seed)
    encoder = BertEncoder(
        str(checkpoint) if resume else base, pooling=pooling, precision="fp32", device=device
    )
    trainee = _Trainee(encoder, config.max_length or encoder.max_seq_length)

    def losses(batch: list[tuple[str, str, float]]) -> dict[str, torch.Tensor]:
        texts1, texts2 = [e[0] for e in batch], [e[1] for e in batch]
        first, second = trainee.embed(texts1), trainee.embed(texts2)
        if config.loss == "am-softmax":
            groups = pair_groups(texts1, texts2)
            return {
                "loss": am_softmax_loss(
                    first, second, config.margin, config.loss_scale, config.negatives, groups
                )
            }
        labels = torch.tensor([e[2] for e in batch], device=first.device)
        return {"loss": cosent_loss(first, second, labels, config.loss_scale)}

    loop = LoopConfig.of(config, max_steps=config.epochs * (len(examples) // config.batch_size))
    done = train_loop(
        trainee.model,
        examples,
        losses,
        trainee.save,
        checkpoint,
        loop,
        resume=resume,
        desc=config.loss,
        show_progress_bar=show_progress_bar,
    )
    report = EncoderTrainReport(done.steps, done.seconds, done.curves.get("loss", []))
    trainee.save(output)
    record = {
        "base": base,
        "pooling": pooling,
        "config": asdict(config),
        "report": asdict(report),
        "pairs": len(examples),
    }
    (output / TRAINING_RECORD).write_text(json.dumps(record, indent=2), "utf-8")
    return report
