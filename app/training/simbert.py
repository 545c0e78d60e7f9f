"""Training SimBERT: both losses, AdamW with warm-up, checkpoints that resume exactly."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from app.core.errors import EmptyInputError, InputValidationError
from app.encoding.registry import CHECKSUMS_FILE, write_checksums
from app.generation.simbert import SimBertModel
from app.training.loop import (
    has_checkpoint,
    linear_schedule,
    load_optimizer,
    save_optimizer,
    seeded_batches,
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


def _save_checkpoint(
    simbert: SimBertModel,
    optimizer: torch.optim.Optimizer,
    folder: Path,
    step: int,
    report: TrainReport,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    simbert.save(folder)
    save_optimizer(optimizer, folder, {"step": step, "report": asdict(report)})


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
    if config.precision not in ("fp32", "bf16"):
        raise InputValidationError(f"precision {config.precision!r}: choose fp32 or bf16")
    output = Path(output)
    checkpoint = output / CHECKPOINT_DIR
    if resume and not has_checkpoint(checkpoint):
        raise InputValidationError(f"nothing to resume: {checkpoint} has no checkpoint")
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    simbert = SimBertModel.load(
        str(checkpoint) if resume else base, device=device, max_length=config.max_length
    )
    model = simbert.model
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    start, report = 0, TrainReport(steps=0, seconds=0.0)
    if resume:
        meta = load_optimizer(optimizer, checkpoint)
        start = int(meta["step"])
        report = TrainReport(**meta["report"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(config.warmup_steps, config.max_steps), last_epoch=start - 1
    )
    autocast = torch.autocast(
        device_type=simbert.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"
    )
    began = time.perf_counter() - report.seconds
    window: list[tuple[float, float]] = []
    bar = tqdm(total=config.max_steps, initial=start, desc="SimBERT", disable=not show_progress_bar)
    model.train()
    for step, batch in seeded_batches(pairs, config.batch_size, config.seed, start):
        if step >= config.max_steps:
            break
        with autocast:
            s2s, retrieval = simbert.losses([a for a, _ in batch], [b for _, b in batch])
        loss = s2s + retrieval
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch stub gap
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        window.append((float(s2s.detach()), float(retrieval.detach())))
        bar.update(1)
        bar.set_postfix(seq2seq=f"{window[-1][0]:.3f}", retrieval=f"{window[-1][1]:.3f}")
        done = step + 1
        if len(window) == 20 or done == config.max_steps:
            report.seq2seq_losses.append(float(np.mean([w[0] for w in window])))
            report.retrieval_losses.append(float(np.mean([w[1] for w in window])))
            window.clear()
        report.steps, report.seconds = done, time.perf_counter() - began
        if done % config.checkpoint_every == 0 or done == config.max_steps:
            _save_checkpoint(simbert, optimizer, checkpoint, done, report)
    bar.close()
    model.eval()
    simbert.save(output)
    (output / "training.json").write_text(
        json.dumps(
            {"config": asdict(config), "report": asdict(report), "pairs": len(pairs)}, indent=2
        ),
        "utf-8",
    )
    if not math.isfinite(report.seq2seq_losses[-1] if report.seq2seq_losses else 0.0):
        raise InputValidationError("training diverged (non-finite loss); lower --lr")
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
