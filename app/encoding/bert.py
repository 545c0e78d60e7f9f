"""BertEncoder: sentence and token vectors from any Hugging Face BERT-family checkpoint."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
from tqdm.auto import tqdm

from app.core.errors import InputValidationError, ModelLoadError
from app.core.types import Embeddings
from app.encoding.pooling import check_pooling, needs_hidden_states, pool
from app.encoding.quantization import quantize_int8
from app.encoding.registry import (
    DEFAULT_MODEL,
    checkpoint_max_seq_length,
    load_failure,
    resolve_model,
)

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")

#: Sentences tokenized (and length-sorted) at a time: bounds memory on large corpora while
#: keeping the sort nearly as tight as a global one.
_CHUNK_SENTENCES = 16384


@dataclass
class _Batch:
    """One padded model batch: rows are sentences sorted by token length."""

    positions: npt.NDArray[np.int64]  # (b,) index of each row in the caller's input
    input_ids: torch.Tensor  # int64 (b, T), on the encoder's device
    attention_mask: torch.Tensor  # int64 (b, T), on the encoder's device; 0 = padding
    keep: npt.NDArray[np.bool_] | None  # (b, T): real, non-special tokens (encode_tokens)


class BertEncoder:
    """Encodes sentences with a BERT-family model from Hugging Face transformers.

    Loads a checkpoint with ``AutoTokenizer`` / ``AutoModel``: the bundled default
    ``all-MiniLM-L6-v2`` (SHA-256 verified), any Hub id, or a local directory. Sentences are
    tokenized once, sorted by token length and cut into batches, so a batch pads only to its own
    longest sentence; results come back in input order.

    Args:
        model_name_or_path: Bundled model name, Hub id or local checkpoint directory.
        pooling: ``cls``, ``mean``, ``first_last_avg`` or ``last2avg`` (DESIGN.md §1).
        max_seq_length: Truncation length in tokens, special tokens included. ``None`` takes
            the checkpoint's ``sentence_bert_config.json`` value, else the tokenizer's limit
            capped at the model's ``max_position_embeddings``.
        precision: ``fp32``; ``bf16`` (autocast, CPU or GPU); ``int8`` (CPU only: dynamic
            int8 quantization with ``torch.ao`` of the attention's Linear layers, the FFN in
            bf16 where the CPU has native bf16 — see ``app.encoding.quantization``).
        device: ``cpu``, ``cuda``, ``cuda:1``...; ``None`` uses a GPU when one is present.
        num_threads: CPU threads for torch (``torch.set_num_threads``, process-wide); ``None``
            keeps torch's default.
        batch_size: Default sentences per model call.
        allow_pickle: Also load pickle-based weights (``pytorch_model.bin``). Off by default:
            only ``*.safetensors`` load, because unpickling a file can run arbitrary code.

    Raises:
        InputValidationError: Unknown ``pooling`` or ``precision``, or ``int8`` on a GPU.
        ModelLoadError: The checkpoint cannot be found or loaded (the message says why).
        ModelIntegrityError: The bundled weights fail their SHA-256 check.

    Example:
        >>> encoder = BertEncoder("all-MiniLM-L6-v2", pooling="mean")
        >>> encoder.encode(["A man is playing a guitar."]).shape
        (1, 384)
    """

    def __init__(
        self,
        model_name_or_path: str = DEFAULT_MODEL,
        *,
        pooling: str = "mean",
        max_seq_length: int | None = None,
        precision: str = "fp32",
        device: str | None = None,
        num_threads: int | None = None,
        batch_size: int = 32,
        allow_pickle: bool = False,
    ) -> None:
        self.pooling = check_pooling(pooling)
        if precision not in PRECISIONS:
            raise InputValidationError(
                f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
            )
        if batch_size < 1:
            raise InputValidationError(f"batch_size must be >= 1, got {batch_size}")
        self.precision = precision
        self.batch_size = batch_size
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision == "int8" and self.device.type != "cpu":
            raise InputValidationError(
                "precision 'int8' (dynamic quantization) runs on the CPU only; "
                "use 'bf16' on a GPU or pass device='cpu'"
            )

        resolved = resolve_model(model_name_or_path)
        self.model_name = resolved.name
        self.tokenizer, model, self.config = _load_checkpoint(
            resolved.path, allow_pickle=allow_pickle, local_files_only=resolved.local_files_only
        )
        model.to(self.device)
        self.model: torch.nn.Module = quantize_int8(model) if precision == "int8" else model

        limit = min(
            int(getattr(self.tokenizer, "model_max_length", 512) or 512),
            int(getattr(self.config, "max_position_embeddings", 512) or 512),
        )
        self.max_seq_length = min(
            max_seq_length or checkpoint_max_seq_length(resolved.path) or limit, limit
        )

    def with_pooling(self, pooling: str) -> BertEncoder:
        """Return an encoder that shares this one's model and tokenizer but pools differently.

        Raises:
            InputValidationError: Unknown ``pooling``.
        """
        other = copy.copy(self)
        other.pooling = check_pooling(pooling)
        return other

    @property
    def dimension(self) -> int:
        """d, the length of each sentence and token vector (the model's hidden size)."""
        return int(self.config.hidden_size)

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int | None = None,
        show_progress_bar: bool = False,
    ) -> Embeddings:
        """Encode sentences into one vector each.

        Args:
            sentences: n sentences. Empty strings are allowed (they encode [CLS] [SEP]).
            batch_size: Sentences per model call; ``None`` uses the encoder's default.
            show_progress_bar: Show a tqdm bar over batches.

        Returns:
            float32 array (n, d), in input order, not normalised. Compare rows with cosine
            (``app.similarity.metrics.cos_sim``): in [-1, 1], higher is more similar.

        Raises:
            InputValidationError: ``sentences`` is a bare string or holds a non-string.
        """
        embeddings = np.zeros((len(sentences), self.dimension), dtype=np.float32)
        hidden = needs_hidden_states(self.pooling)
        for batch in self._batches(sentences, batch_size, show_progress_bar, special=False):
            out = self._forward(batch, output_hidden_states=hidden)
            pooled = pool(
                self.pooling,
                batch.attention_mask,
                out.last_hidden_state,
                out.hidden_states if hidden else None,
            )
            embeddings[batch.positions] = pooled.float().cpu().numpy()
        return embeddings

    def encode_tokens(
        self,
        sentences: Sequence[str],
        batch_size: int | None = None,
        show_progress_bar: bool = False,
    ) -> list[npt.NDArray[np.float32]]:
        """Encode sentences into their contextual token vectors (last layer).

        Special tokens ([CLS], [SEP]) and padding are removed, so each array holds the
        sentence's word-piece vectors only — the input of WMD / WRD (DESIGN.md §4).

        Args:
            sentences: n sentences.
            batch_size: Sentences per model call; ``None`` uses the encoder's default.
            show_progress_bar: Show a tqdm bar over batches.

        Returns:
            n float32 arrays, the i-th of shape (n_tokens_i, d), in input order
            (n_tokens_i = 0 for an empty sentence).

        Raises:
            InputValidationError: ``sentences`` is a bare string or holds a non-string.
        """
        result: list[npt.NDArray[np.float32]] = [
            np.zeros((0, self.dimension), np.float32) for _ in sentences
        ]
        for batch in self._batches(sentences, batch_size, show_progress_bar, special=True):
            hidden = self._forward(batch, output_hidden_states=False).last_hidden_state
            tokens = hidden.float().cpu().numpy()
            assert batch.keep is not None
            for row, position in enumerate(batch.positions):
                result[position] = np.ascontiguousarray(tokens[row][batch.keep[row]])
        return result

    def tokenize(self, sentences: Sequence[str]) -> list[list[str]]:
        """Word pieces of each sentence, truncated and without special tokens: the rows of
        ``encode_tokens``, in the same order."""
        encoded = self.tokenizer(
            list(sentences),
            truncation=True,
            max_length=self.max_seq_length,
            return_special_tokens_mask=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [
            [
                t
                for t, special in zip(self.tokenizer.convert_ids_to_tokens(ids), mask, strict=True)
                if not special
            ]
            for ids, mask in zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True)
        ]

    def count_tokens(self, sentences: Sequence[str]) -> list[int]:
        """Tokens of each sentence before truncation, [CLS] and [SEP] included."""
        encoded = self.tokenizer(
            list(sentences), return_attention_mask=False, return_token_type_ids=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def _forward(self, batch: _Batch, *, output_hidden_states: bool) -> Any:
        with torch.inference_mode(), self._autocast():
            return self.model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                output_hidden_states=output_hidden_states,
            )

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            device_type=self.device.type,
            dtype=torch.bfloat16,
            enabled=self.precision == "bf16",
        )

    def _batches(
        self,
        sentences: Sequence[str],
        batch_size: int | None,
        show_progress_bar: bool,
        *,
        special: bool,
    ) -> Iterator[_Batch]:
        """Tokenize in chunks, sort each chunk by token length (longest first), pad per batch."""
        if isinstance(sentences, str):
            raise InputValidationError("pass a list of sentences, not a single string")
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                raise InputValidationError(f"sentence {i} is {type(s).__name__}, not str")
        size = batch_size or self.batch_size
        if size < 1:
            raise InputValidationError(f"batch_size must be >= 1, got {size}")
        pad_id = self.tokenizer.pad_token_id or 0
        n = len(sentences)
        with tqdm(
            total=n, unit="sent", desc="Encoding", disable=not show_progress_bar or n == 0
        ) as bar:
            for start in range(0, n, _CHUNK_SENTENCES):
                chunk = list(sentences[start : start + _CHUNK_SENTENCES])
                encoded = self.tokenizer(
                    chunk,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_attention_mask=False,
                    return_token_type_ids=False,
                    return_special_tokens_mask=special,
                )
                ids: list[list[int]] = encoded["input_ids"]
                lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
                order = np.argsort(-lengths, kind="stable")
                for b in range(0, len(order), size):
                    rows = order[b : b + size]
                    width = int(lengths[rows[0]])
                    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
                    mask = np.zeros((len(rows), width), dtype=np.int64)
                    keep = np.zeros((len(rows), width), dtype=bool) if special else None
                    for r, j in enumerate(rows):
                        length = int(lengths[j])
                        input_ids[r, :length] = ids[j]
                        mask[r, :length] = 1
                        if keep is not None:
                            keep[r, :length] = ~np.asarray(
                                encoded["special_tokens_mask"][j], dtype=bool
                            )
                    yield _Batch(
                        positions=rows.astype(np.int64) + start,
                        input_ids=torch.from_numpy(input_ids).to(self.device),
                        attention_mask=torch.from_numpy(mask).to(self.device),
                        keep=keep,
                    )
                    bar.update(len(rows))


def _load_checkpoint(
    path: str, *, allow_pickle: bool, local_files_only: bool = False
) -> tuple[PreTrainedTokenizerBase, torch.nn.Module, PretrainedConfig]:
    """Load tokenizer, model (in eval mode) and config from a local directory or a Hub id.

    Raises:
        ModelLoadError: Missing files, no network for a Hub id, or pickle-only weights while
            ``allow_pickle`` is off.
    """
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
        # float32 whatever the stored dtype: precision is applied afterwards, by this class.
        model = AutoModel.from_pretrained(
            path,
            use_safetensors=None if allow_pickle else True,
            dtype=torch.float32,
            local_files_only=local_files_only,
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(load_failure(path, exc, allow_pickle=allow_pickle)) from exc
    model.eval()
    return tokenizer, model, model.config
