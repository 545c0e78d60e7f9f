"""Training SimBERT (both losses, on the shared loop ``app.training.loop``) and exporting the
trained generator as a shippable folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from app.core.errors import EmptyInputError, InputValidationError
from app.encoding.registry import CHECKSUMS_FILE, write_checksums
from app.generation.model import SimBertModel
from app.training.loop import (
    LoopConfig,
    check_precision,
    has_checkpoint,
    seed_everything,
    train_loop,
)

CHECKPOINT_DIR = "checkpoint"


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of ``train_simbert``.

    Attributes:
        batch_size: Pairs per step (2x sequences: both directions).
        max_steps: Optimizer steps in all.
        lr: AdamW's peak learning rate.
        warmup_steps: Linear warm-up steps, then linear decay to 0 at ``max_steps``.
        weight_decay: AdamW's decoupled weight decay.
        max_grad_norm: Gradient clipping.
        seed: Seeds initialisation and the data order.
        checkpoint_every: Steps between checkpoints (model + optimizer, resumable).
        precision: ``fp32`` or ``bf16`` (autocast; on a GPU, or a CPU with native bf16).
        max_length: Longest source or target, in tokens.
    """

    batch_size: int = 32
    max_steps: int = 1000
    lr: float = 5e-5
    warmup_steps: int = 100
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 200
    precision: str = "fp32"
    max_length: int = 64


@dataclass
class TrainReport:
    """Where training got to, and its loss curve (means over each logging window)."""

    steps: int
    seconds: float
    seq2seq_losses: list[float] = field(default_factory=list)
    retrieval_losses: list[float] = field(default_factory=list)


def train_simbert(
    pairs: Sequence[tuple[str, str]],
    base: str,
    output: str | Path,
    config: TrainConfig = TrainConfig(),  # noqa: B008 (frozen dataclass)
    *,
    resume: bool = False,
    device: str | None = None,
    show_progress_bar: bool = False,
) -> TrainReport:
    """Fine-tune a BERT the SimBERT way on paraphrase pairs and save it to ``output``.

    Loss per step: seq2seq cross-entropy (a -> b and b -> a) + in-batch retrieval softmax.
    Every ``checkpoint_every`` steps the model and the AdamW state go to ``output/checkpoint``;
    ``resume`` continues from there, with the same data order.

    Args:
        pairs: (a, b) sentences with the same meaning.
        base: The starting checkpoint (a local folder or Hub id).
        output: Folder of the final model (Hugging Face format, safetensors).
        config: The knobs.
        resume: Continue from ``output/checkpoint``.
        device: ``cpu``, ``cuda``...; ``None`` uses a GPU when present.
        show_progress_bar: A tqdm bar with both losses.

    Returns:
        The report (steps, seconds, loss curve).

    Raises:
        EmptyInputError: Fewer pairs than one batch.
        InputValidationError: Bad precision, or ``resume`` without a checkpoint.
        ModelLoadError: The base cannot be loaded.
    """
    if len(pairs) < config.batch_size:
        raise EmptyInputError(
            f"{len(pairs)} pairs; at least one batch of {config.batch_size} needed"
        )
    check_precision(config.precision)
    output = Path(output)
    checkpoint = output / CHECKPOINT_DIR
    if resume and not has_checkpoint(checkpoint):
        raise InputValidationError(f"nothing to resume: {checkpoint} has no checkpoint")
    seed_everything(config.seed)
    simbert = SimBertModel.load(
        str(checkpoint) if resume else base, device=device, max_length=config.max_length
    )

    def losses(batch: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        s2s, retrieval = simbert.losses([a for a, _ in batch], [b for _, b in batch])
        return {"seq2seq": s2s, "retrieval": retrieval}

    loop = LoopConfig.of(config, max_steps=config.max_steps)
    done = train_loop(
        simbert.model,
        list(pairs),
        losses,
        simbert.save,
        checkpoint,
        loop,
        resume=resume,
        desc="SimBERT",
        show_progress_bar=show_progress_bar,
    )
    report = TrainReport(
        done.steps, done.seconds, done.curves.get("seq2seq", []), done.curves.get("retrieval", [])
    )
    simbert.save(output)
    (output / "training.json").write_text(
        json.dumps(
            {"config": asdict(config), "report": asdict(report), "pairs": len(pairs)}, indent=2
        ),
        "utf-8",
    )
    return report


#: Files of a shipped generator that ``export_generator`` writes, besides the tokenizer's.
TRAINING_RECORD = "training.json"


def export_generator(source: str | Path, output: str | Path) -> list[str]:
    """Write a trained generator as a shippable folder: float16 safetensors (half the size;
    loaded back as float32), its tokenizer, the training record and ``SHA256SUMS``, which
    ``SimBertModel.load`` verifies.

    Args:
        source: A ``train_simbert`` output folder.
        output: The folder to write (created; its files replaced).

    Returns:
        The files written, by name.

    Raises:
        ModelLoadError: ``source`` cannot be loaded.
    """
    source, output = Path(source), Path(output)
    simbert = SimBertModel.load(str(source), device="cpu")
    output.mkdir(parents=True, exist_ok=True)
    simbert.save(output, dtype=torch.float16)
    if (source / TRAINING_RECORD).is_file():
        shutil.copyfile(source / TRAINING_RECORD, output / TRAINING_RECORD)
    names = sorted(p.name for p in output.iterdir() if p.is_file() and p.name != CHECKSUMS_FILE)
    write_checksums(output, names)
    return [*names, CHECKSUMS_FILE]
