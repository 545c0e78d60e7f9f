"""TorchScript for the encoder's forward pass: the model traced from (input ids, attention
mask) to the last hidden state, checked against eager on batches of other shapes, and run
without the profiling executor's per-shape re-optimisation (``BertEncoder(jit=True)``)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
from torch.jit._trace import TracerWarning

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


def interpreted() -> contextlib.AbstractContextManager[None]:
    """Run a TorchScript module without the profiling executor's per-shape re-optimisation
    (a server sees many batch shapes; measured faster at small batches and never recompiling)."""
    from torch.jit._fuser import optimized_execution

    return cast(contextlib.AbstractContextManager[None], optimized_execution(False))


class _LastHidden(torch.nn.Module):
    """(input ids, attention mask) -> last hidden state: the signature traced."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        return out


@dataclass(frozen=True)
class LastHiddenState:
    """What the traced model gives, shaped as the parts of a transformers output used here."""

    last_hidden_state: torch.Tensor
    hidden_states: None = None


def _example_batch(
    tokenizer: PreTrainedTokenizerBase, device: torch.device, rows: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of ``rows`` x ``width`` random token ids, row i keeping
    ``width - i`` tokens (the first row unpadded)."""
    generator = torch.Generator().manual_seed(rows * 1000 + width)
    low = min(1000, len(tokenizer) - 1)
    ids = torch.randint(low, len(tokenizer), (rows, width), generator=generator)
    mask = torch.ones(rows, width, dtype=torch.int64)
    for i in range(1, rows):
        mask[i, max(1, width - i) :] = 0
        ids[i, max(1, width - i) :] = tokenizer.pad_token_id or 0
    return ids.to(device), mask.to(device)


def trace_last_hidden(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    device: torch.device,
    autocast: torch.autocast,
) -> torch.jit.ScriptModule | None:
    """``model`` traced with TorchScript (input ids, mask -> last hidden state), checked
    against eager on batches of other shapes, with and without padding, under ``autocast``;
    ``None`` (eager stays) when the trace fails or disagrees (by more than 1e-4 relative)."""
    example = _example_batch(tokenizer, device, rows=2, width=12)
    with torch.inference_mode(), autocast, warnings.catch_warnings():
        # transformers' shape checks become constants; the check below is what counts
        warnings.simplefilter("ignore", TracerWarning)
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        try:
            traced = cast(
                torch.jit.ScriptModule,
                torch.jit.trace(  # type: ignore[no-untyped-call]
                    _LastHidden(model), example, check_trace=False, strict=False
                ),
            )
        except Exception as exc:  # noqa: BLE001 - any failure: eager is the fallback
            logger.warning("TorchScript trace failed, running eager: %s", exc)
            return None
        with interpreted():
            for rows, width in ((3, 20), (1, 5), (5, 9)):
                ids, mask = _example_batch(tokenizer, device, rows, width)
                eager = model(input_ids=ids, attention_mask=mask).last_hidden_state
                got = traced(ids, mask)
                kept = mask.bool()
                error = float((got[kept].float() - eager[kept].float()).abs().max())
                if not error <= 1e-4 * max(1.0, float(eager[kept].float().abs().max())):
                    logger.warning("TorchScript trace disagrees (%.2g), running eager", error)
                    return None
    return traced
