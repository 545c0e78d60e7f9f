"""What the training loops share: the learning-rate schedule, seeded batches that resume at any
step, and the optimizer's state saved without pickle."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

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
