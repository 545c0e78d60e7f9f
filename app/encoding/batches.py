"""Model batches from sentences: tokenized once in chunks, sorted by token length (longest
first) and cut into batches of at most ``batch_size`` sentences and ``max_batch_tokens`` padded
tokens, each padded only to its own longest sentence (``BertEncoder``'s batching; TEI's token
budget)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import torch
from tqdm.auto import tqdm

from app.core.errors import InputValidationError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: Sentences tokenized (and length-sorted) at a time: bounds memory on large corpora while
#: keeping the sort nearly as tight as a global one.
CHUNK_SENTENCES = 16384


@dataclass
class Batch:
    """One padded model batch: rows are sentences sorted by token length."""

    positions: npt.NDArray[np.int64]  # (b,) index of each row in the caller's input
    input_ids: torch.Tensor  # int64 (b, T), on the encoder's device
    attention_mask: torch.Tensor  # int64 (b, T), on the encoder's device; 0 = padding
    keep: npt.NDArray[np.bool_] | None  # (b, T): real, non-special tokens (encode_tokens)


@dataclass(frozen=True)
class BatchShape:
    """How sentences are cut into batches.

    Attributes:
        batch_size: Sentences per batch (>= 1).
        max_seq_length: Tokens kept per sentence, special tokens included.
        max_batch_tokens: Padded tokens (rows x width) per batch; ``None``: no budget.
        pad_to_multiple_of: Round each batch's width up to a multiple of this; ``None``: no.
        max_positions: The model's position table (a width never goes past it).
        trailing_specials: Special tokens at a sentence's end that truncation keeps.
    """

    batch_size: int
    max_seq_length: int
    max_batch_tokens: int | None
    pad_to_multiple_of: int | None
    max_positions: int
    trailing_specials: int

    def padded_width(self, longest: int) -> int:
        """``longest`` rounded up to a multiple of ``pad_to_multiple_of`` (within the position
        table)."""
        step = self.pad_to_multiple_of
        if step is None or step <= 1:
            return longest
        return max(longest, min(-(-longest // step) * step, self.max_positions))

    def cut(
        self, order: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
    ) -> Iterator[npt.NDArray[np.int64]]:
        """Rows (longest first) in batches of <= ``batch_size`` sentences whose padded size,
        rows x longest, padded as the batch will be, stays within ``max_batch_tokens`` (a
        longer sentence still goes, alone)."""
        budget, size = self.max_batch_tokens, self.batch_size
        b = 0
        while b < len(order):
            width = self.padded_width(int(lengths[order[b]]))
            rows = size if budget is None else max(1, min(size, budget // max(width, 1)))
            yield order[b : b + rows]
            b += rows


def trailing_specials(tokenizer: PreTrainedTokenizerBase, max_seq_length: int) -> int:
    """Special tokens the tokenizer appends to a sentence ([SEP]: 1), kept by truncation."""
    mask = tokenizer("a", return_special_tokens_mask=True)["special_tokens_mask"]
    trailing = len(list(itertools.takewhile(bool, reversed(mask))))
    return min(trailing, max_seq_length - 1)


def length_sorted_batches(
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[str],
    shape: BatchShape,
    device: torch.device,
    lengths_out: npt.NDArray[np.int64],
    *,
    special: bool,
    show_progress_bar: bool = False,
) -> Iterator[Batch]:
    """Tokenize in chunks, sort each chunk by token length (longest first), and cut it into
    batches (``BatchShape.cut``), each padded to its own longest sentence. ``lengths_out``
    (int64 (n,)) receives each sentence's token count before truncation; with ``special``
    each batch says which tokens are real, non-special ones (``Batch.keep``).

    Raises:
        InputValidationError: A bare string, a non-string sentence, or ``batch_size`` < 1.
    """
    if isinstance(sentences, str):
        raise InputValidationError("pass a list of sentences, not a single string")
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise InputValidationError(f"sentence {i} is {type(s).__name__}, not str")
    if shape.batch_size < 1:
        raise InputValidationError(f"batch_size must be >= 1, got {shape.batch_size}")
    pad_id = tokenizer.pad_token_id or 0
    limit, trailing = shape.max_seq_length, shape.trailing_specials
    n = len(sentences)
    with tqdm(
        total=n, unit="sent", desc="Encoding", disable=not show_progress_bar or n == 0
    ) as bar:
        for start in range(0, n, CHUNK_SENTENCES):
            chunk = list(sentences[start : start + CHUNK_SENTENCES])
            # Untruncated, so the counts are the real ones; cut below as the tokenizer
            # would (the end of the text goes, the trailing special tokens stay).
            encoded = tokenizer(
                chunk,
                return_attention_mask=False,
                return_token_type_ids=False,
                return_special_tokens_mask=special,
            )
            ids: list[list[int]] = encoded["input_ids"]
            full = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
            lengths_out[start : start + len(ids)] = full
            lengths = np.minimum(full, limit)
            order = np.argsort(-lengths, kind="stable")
            for rows in shape.cut(order, lengths):
                width = shape.padded_width(int(lengths[rows[0]]))
                input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                keep = np.zeros((len(rows), width), dtype=bool) if special else None
                for r, j in enumerate(rows):
                    length = int(lengths[j])
                    row = ids[j] if full[j] == length else _cut_row(ids[j], length, trailing)
                    input_ids[r, :length] = row
                    mask[r, :length] = 1
                    if keep is not None:
                        flags = encoded["special_tokens_mask"][j]
                        if full[j] != length:
                            flags = _cut_row(flags, length, trailing)
                        keep[r, :length] = ~np.asarray(flags, dtype=bool)
                yield Batch(
                    positions=rows.astype(np.int64) + start,
                    input_ids=torch.from_numpy(input_ids).to(device),
                    attention_mask=torch.from_numpy(mask).to(device),
                    keep=keep,
                )
                bar.update(len(rows))


def _cut_row(row: list[int], length: int, trailing: int) -> list[int]:
    """The first ``length`` entries of a tokenized sentence, its ``trailing`` special tokens
    kept at the end — what the tokenizer's own truncation gives."""
    return row[: length - trailing] + (row[-trailing:] if trailing else [])
