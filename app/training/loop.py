"""The one training loop (SimBERT and the encoder fine-tuning both run it): AdamW with decoupled
weight decay, linear warm-up and decay, gradient clipping, optional bf16 autocast, seeded batches
that resume at any step, loss curves, and resumable checkpoints saved without pickle.

It plays the part of Hugging Face's ``Trainer`` (same schedule, same parameter groups, the same
``trainer_state.json`` name) for the two models this project trains; a model plugs in by giving
its per-batch losses and how it saves itself.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from app.core.errors import InputValidationError

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"

T = TypeVar("T")


def linear_schedule(warmup_steps: int, max_steps: int) -> Callable[[int], float]:
    """The learning-rate factor at a step: linear warm-up from 1/warmup to 1 over
    ``warmup_steps``, then linear decay to 0 at ``max_steps`` (BERT's schedule, as in
    ``transformers.get_linear_schedule_with_warmup``)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))

    return factor


def seeded_batches(
    items: Sequence[T], batch_size: int, seed: int, start_step: int = 0
) -> Iterator[tuple[int, list[T]]]:
    """``(step, batch)`` forever: each epoch a permutation seeded by ``seed + epoch``, the last
    incomplete batch dropped; starting at ``start_step`` gives what an uninterrupted run gives
    from there (exact resumption)."""
    per_epoch = max(1, len(items) // batch_size)
    step = start_step
    while True:
        epoch, offset = divmod(step, per_epoch)
        order = np.random.default_rng(seed + epoch).permutation(len(items))
        for i in range(offset, per_epoch):
            yield step, [items[j] for j in order[i * batch_size : (i + 1) * batch_size]]
            step += 1


def save_optimizer(optimizer: torch.optim.Optimizer, folder: Path, meta: dict[str, Any]) -> None:
    """Write the optimizer's state (``optimizer.safetensors``, no pickle) and ``meta`` with its
    parameter groups (``trainer_state.json``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{name}": value.detach().cpu().contiguous()
        for index, slots in state["state"].items()
        for name, value in slots.items()
    }
    save_file(tensors, str(folder / OPTIMIZER_FILE))
    record = {**meta, "param_groups": state["param_groups"]}
    (folder / STATE_FILE).write_text(json.dumps(record), "utf-8")


def load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> dict[str, Any]:
    """Restore what ``save_optimizer`` wrote; returns its ``meta``."""
    meta = json.loads((folder / STATE_FILE).read_text("utf-8"))
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(folder / OPTIMIZER_FILE)).items():
        index, name = key.split(".", 1)
        slots.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
    return dict(meta)


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds a resumable checkpoint."""
    return (folder / STATE_FILE).is_file()


PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class LoopConfig:
    """The knobs of ``train_loop`` (the optimisation, not the model or its loss).

    Attributes:
        batch_size: Items per step.
        max_steps: Optimizer steps in all.
        lr: AdamW's peak learning rate.
        warmup_steps: Linear warm-up steps, then linear decay to 0 at ``max_steps``.
        weight_decay: AdamW's decoupled weight decay (not on biases and LayerNorm weights).
        max_grad_norm: Gradient clipping (global L2 norm).
        seed: Seeds the data order.
        checkpoint_every: Steps between resumable checkpoints.
        precision: ``fp32`` or ``bf16`` (autocast).
        log_every: Steps per point of the loss curves (their means).
    """

    batch_size: int
    max_steps: int
    lr: float
    warmup_steps: int
    weight_decay: float
    max_grad_norm: float
    seed: int
    checkpoint_every: int
    precision: str = "fp32"
    log_every: int = 20

    @classmethod
    def of(cls, knobs: Any, max_steps: int) -> LoopConfig:
        """The loop's knobs out of a model's training config (the fields of the same names)
        and its step count."""
        names = [f.name for f in fields(cls) if f.name not in ("max_steps", "log_every")]
        return cls(max_steps=max_steps, **{name: getattr(knobs, name) for name in names})


@dataclass
class LoopReport:
    """Where training got to: optimizer steps, seconds (resumed runs included), and one loss
    curve per named loss (means over ``log_every`` steps; the last window may be shorter)."""

    steps: int = 0
    seconds: float = 0.0
    curves: dict[str, list[float]] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators (dropout, freshly initialised heads)."""
    random.seed(seed)
    torch.manual_seed(seed)


def check_precision(precision: str) -> None:
    """Raises ``InputValidationError`` unless ``precision`` is ``fp32`` or ``bf16``."""
    if precision not in PRECISIONS:
        raise InputValidationError(f"precision {precision!r}: choose {' or '.join(PRECISIONS)}")


def train_loop(
    model: torch.nn.Module,
    items: Sequence[T],
    losses: Callable[[list[T]], dict[str, torch.Tensor]],
    save_model: Callable[[Path], None],
    checkpoint: Path,
    config: LoopConfig,
    *,
    resume: bool = False,
    desc: str = "train",
    show_progress_bar: bool = False,
) -> LoopReport:
    """Train ``model`` on ``items`` and return the report; the model is left in eval mode.

    Each step draws a batch (``seeded_batches``), sums the named ``losses`` it gives, clips
    the gradient and steps AdamW (fused: one kernel for every parameter) and the schedule
    (``linear_schedule``). Every ``checkpoint_every`` steps and at the end, ``save_model`` and
    the optimizer state go to ``checkpoint``; with ``resume`` the optimizer, the schedule, the
    data order and the report continue from there (the caller has loaded the model from it).

    Args:
        model: The module whose parameters are trained (on its device).
        items: Training examples; a batch is a list of them.
        losses: A batch -> named scalar losses (float tensors with gradients).
        save_model: Writes the model (and what it needs, e.g. its tokenizer) into a folder.
        checkpoint: The checkpoint folder.
        config: The knobs.
        resume: Continue from ``checkpoint``.
        desc: The progress bar's label.
        show_progress_bar: A tqdm bar with the latest losses.

    Raises:
        InputValidationError: Bad precision, or the loss became non-finite (``lower --lr``).
    """
    check_precision(config.precision)
    decay = [p for p in model.parameters() if p.ndim > 1]  # not biases and LayerNorm
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        fused=device.type in ("cpu", "cuda"),  # 6x faster than the per-parameter loop on a CPU
    )
    start, report = 0, LoopReport()
    if resume:
        meta = load_optimizer(optimizer, checkpoint)
        start, report = int(meta["step"]), LoopReport(**meta["report"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(config.warmup_steps, config.max_steps), last_epoch=start - 1
    )
    autocast = torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"
    )
    began = time.perf_counter() - report.seconds
    window: dict[str, list[float]] = {}
    bar = tqdm(total=config.max_steps, initial=start, desc=desc, disable=not show_progress_bar)
    model.train()
    for step, batch in seeded_batches(items, config.batch_size, config.seed, start):
        if step >= config.max_steps:
            break
        with autocast:
            parts = losses(batch)
        loss = torch.stack(list(parts.values())).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch stub gap
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        for name, part in parts.items():
            window.setdefault(name, []).append(float(part.detach()))
        bar.update(1)
        bar.set_postfix({name: f"{values[-1]:.4f}" for name, values in window.items()})
        done = step + 1
        if len(next(iter(window.values()))) == config.log_every or done == config.max_steps:
            for name, values in window.items():
                report.curves.setdefault(name, []).append(float(np.mean(values)))
            window.clear()
            if not all(math.isfinite(curve[-1]) for curve in report.curves.values()):
                raise InputValidationError("training diverged (non-finite loss); lower --lr")
        report.steps, report.seconds = done, time.perf_counter() - began
        if done % config.checkpoint_every == 0 or done == config.max_steps:
            save_model(checkpoint)
            save_optimizer(optimizer, checkpoint, {"step": done, "report": asdict(report)})
    bar.close()
    model.eval()
    return report
