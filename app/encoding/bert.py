"""BertEncoder: sentence and token vectors from any Hugging Face BERT-family checkpoint."""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import torch
from torch.jit._trace import TracerWarning
from tqdm.auto import tqdm

from app.core.errors import InputValidationError, ModelLoadError
from app.core.types import Embeddings
from app.encoding.base import Encoded
from app.encoding.pooling import check_pooling, needs_hidden_states, pool
from app.encoding.precision import (
    CALIBRATION_SENTENCES,
    MIN_COSINE,
    bf16_unavailable,
    cast_linear_bf16,
)
from app.encoding.quantization import quantize_int8
from app.encoding.registry import (
    DEFAULT_MODEL,
    checkpoint_max_seq_length,
    load_failure,
    resolve_model,
)
from app.similarity.metrics import pairwise_cos_sim

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")

#: Sentences tokenized (and length-sorted) at a time: bounds memory on large corpora while
#: keeping the sort nearly as tight as a global one.
_CHUNK_SENTENCES = 16384


def _interpreted() -> contextlib.AbstractContextManager[None]:
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
class _LastHiddenState:
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
        precision: ``fp32``; ``bf16`` (Linear weights stored in bf16, run under autocast, CPU
            or GPU); ``int8`` (CPU only: dynamic int8 quantization with ``torch.ao`` of the
            attention's Linear layers, the FFN in bf16 where the CPU has native bf16 — see
            ``app.encoding.quantization``); ``auto``: ``bf16`` where the device has native bf16
            and this model's bf16 vectors stay within cosine ``MIN_COSINE`` of fp32 on
            ``CALIBRATION_SENTENCES``, else ``fp32`` (``app.encoding.precision``). The
            ``precision`` attribute holds the one chosen, ``precision_reason`` why.
        device: ``cpu``, ``cuda``, ``cuda:1``...; ``None`` uses a GPU when one is present.
        num_threads: CPU threads for torch (``torch.set_num_threads``, process-wide); ``None``
            keeps torch's default.
        batch_size: Default sentences per model call.
        max_batch_tokens: Padded tokens (rows x longest row) per model call: a batch of long
            sentences is cut smaller (TEI's ``max_batch_tokens``); ``None``: no budget.
        pad_to_multiple_of: Round each batch's width up to a multiple of this many tokens
            (masked padding; results unchanged). oneDNN compiles and caches kernels per input
            shape: a server's mix of batch shapes grew its RSS by ~500 MB over a benchmark at
            width steps of 1 token, ~190 MB at 8. ``None``: pad to the longest sentence only
            (fastest on length-sorted corpora: 8 costs 12% there).
        jit: Run the model traced with TorchScript (CPU, fp32 or bf16, poolings of the last
            layer): no Python between its operations, so the forward pass never waits for
            the GIL that a server's event loop holds, and each call costs less (one sentence
            4.8 ms instead of 7.5 ms; 32 sentences 30 ms instead of 35 ms on 2 cores). The
            trace is checked against eager on padded batches of other shapes at load; eager
            stays if it fails or disagrees.
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
        max_batch_tokens: int | None = None,
        pad_to_multiple_of: int | None = None,
        jit: bool = False,
        allow_pickle: bool = False,
    ) -> None:
        self.pooling = check_pooling(pooling)
        if precision not in PRECISIONS:
            raise InputValidationError(
                f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
            )
        if batch_size < 1:
            raise InputValidationError(f"batch_size must be >= 1, got {batch_size}")
        for name, value in (
            ("max_batch_tokens", max_batch_tokens),
            ("pad_to_multiple_of", pad_to_multiple_of),
        ):
            if value is not None and value < 1:
                raise InputValidationError(f"{name} must be >= 1, got {value}")
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.pad_to_multiple_of = pad_to_multiple_of
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
        self.model: torch.nn.Module = model
        self._traced: torch.jit.ScriptModule | None = None

        limit = min(
            int(getattr(self.tokenizer, "model_max_length", 512) or 512),
            int(getattr(self.config, "max_position_embeddings", 512) or 512),
        )
        self.max_seq_length = min(
            max_seq_length or checkpoint_max_seq_length(resolved.path) or limit, limit
        )
        self.precision = "fp32"
        self.precision_reason = "asked for"
        if precision == "auto":
            precision, self.precision_reason = self._choose_precision()
        if precision == "bf16":
            cast_linear_bf16(model)
        elif precision == "int8":
            self.model = quantize_int8(model)
        self.precision = precision
        if jit and self.device.type == "cpu" and precision in ("fp32", "bf16"):
            self._traced = self._trace()
        #: Whether sentence and token vectors come from the TorchScript trace.
        self.jit = self._traced is not None

    def _choose_precision(self) -> tuple[str, str]:
        """``auto``: bf16 or fp32, and why (the model is still in fp32 here)."""
        unavailable = bf16_unavailable(self.device)
        if unavailable is not None:
            return "fp32", unavailable
        reference = self.encode(CALIBRATION_SENTENCES)
        self.precision = "bf16"  # autocast over fp32 weights: the numbers bf16 weights give
        trial = self.encode(CALIBRATION_SENTENCES)
        self.precision = "fp32"
        cosine = pairwise_cos_sim(reference, trial)
        worst = float(cosine.min())
        measured = f"lowest cosine to fp32 {worst:.5f} over {len(cosine)} calibration sentences"
        if worst >= MIN_COSINE:
            return "bf16", f"native bf16 on {self.device.type}; {measured}"
        return "fp32", f"bf16 would move vectors: {measured} (needs {MIN_COSINE})"

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
        return self._encode(
            sentences, batch_size, show_progress_bar, token_embeddings=False
        ).vectors

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
        encoded = self._encode(sentences, batch_size, show_progress_bar, token_embeddings=True)
        assert encoded.token_embeddings is not None
        return encoded.token_embeddings

    def encode_with_lengths(
        self, sentences: Sequence[str], *, token_embeddings: bool = False
    ) -> Encoded:
        """Sentence vectors, each sentence's token count before truncation, and
        (``token_embeddings``) its token vectors too — all from one tokenization and one
        forward pass per batch.

        What a server needs in one model call: the counts tell which sentences were cut to
        ``max_seq_length`` without tokenizing them again.

        Returns:
            ``Encoded``: vectors float32 (n, d) as ``encode``; lengths int64 (n,), special
            tokens included; token_embeddings as ``encode_tokens`` when asked, else ``None``.

        Raises:
            InputValidationError: ``sentences`` is a bare string or holds a non-string.
        """
        return self._encode(sentences, None, False, token_embeddings=token_embeddings)

    def _encode(
        self,
        sentences: Sequence[str],
        batch_size: int | None,
        progress: bool,
        *,
        token_embeddings: bool,
    ) -> Encoded:
        n = len(sentences)
        vectors = np.zeros((n, self.dimension), dtype=np.float32)
        lengths = np.zeros(n, dtype=np.int64)
        rows: list[npt.NDArray[np.float32]] | None = None
        if token_embeddings:
            rows = [np.zeros((0, self.dimension), np.float32) for _ in sentences]
        hidden = needs_hidden_states(self.pooling)
        for batch in self._batches(
            sentences, batch_size, progress, lengths, special=token_embeddings
        ):
            out = self._forward(batch, output_hidden_states=hidden)
            pooled = pool(
                self.pooling,
                batch.attention_mask,
                out.last_hidden_state,
                out.hidden_states if hidden else None,
            )
            vectors[batch.positions] = pooled.float().cpu().numpy()
            if rows is not None:
                states = out.last_hidden_state.float().cpu().numpy()
                assert batch.keep is not None
                for r, position in enumerate(batch.positions):
                    rows[position] = np.ascontiguousarray(states[r][batch.keep[r]])
        return Encoded(vectors, lengths, rows)

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

    def _forward(self, batch: _Batch, *, output_hidden_states: bool) -> Any:
        with torch.inference_mode(), self.autocast():
            if self._traced is not None and not output_hidden_states:
                with _interpreted():
                    hidden = self._traced(batch.input_ids, batch.attention_mask)
                return _LastHiddenState(hidden)
            return self.model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                output_hidden_states=output_hidden_states,
            )

    def _trace(self) -> torch.jit.ScriptModule | None:
        """The model traced with TorchScript (input ids, mask -> last hidden state), checked
        against eager on batches of other shapes, with and without padding; ``None`` (eager
        stays) when the trace fails or disagrees."""
        example = _example_batch(self.tokenizer, self.device, rows=2, width=12)
        with torch.inference_mode(), self.autocast(), warnings.catch_warnings():
            # transformers' shape checks become constants; the check below is what counts
            warnings.simplefilter("ignore", TracerWarning)
            warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
            try:
                traced = cast(
                    torch.jit.ScriptModule,
                    torch.jit.trace(  # type: ignore[no-untyped-call]
                        _LastHidden(self.model), example, check_trace=False, strict=False
                    ),
                )
            except Exception as exc:  # noqa: BLE001 - any failure: eager is the fallback
                logger.warning("TorchScript trace failed, running eager: %s", exc)
                return None
            with _interpreted():
                for rows, width in ((3, 20), (1, 5), (5, 9)):
                    ids, mask = _example_batch(self.tokenizer, self.device, rows, width)
                    eager = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                    got = traced(ids, mask)
                    kept = mask.bool()
                    error = float((got[kept].float() - eager[kept].float()).abs().max())
                    if not error <= 1e-4 * max(1.0, float(eager[kept].float().abs().max())):
                        logger.warning("TorchScript trace disagrees (%.2g), running eager", error)
                        return None
        return traced

    def autocast(self) -> torch.autocast:
        """bf16 autocast on the model's device when the encoder runs bf16 (a no-op otherwise):
        the context every forward pass of this model runs in."""
        return torch.autocast(
            device_type=self.device.type,
            dtype=torch.bfloat16,
            enabled=self.precision == "bf16",
        )

    @functools.cached_property
    def _trailing_specials(self) -> int:
        """Special tokens the tokenizer appends to a sentence ([SEP]: 1), kept by truncation."""
        mask = self.tokenizer("a", return_special_tokens_mask=True)["special_tokens_mask"]
        trailing = len(list(itertools.takewhile(bool, reversed(mask))))
        return min(trailing, self.max_seq_length - 1)

    def _batches(
        self,
        sentences: Sequence[str],
        batch_size: int | None,
        show_progress_bar: bool,
        lengths_out: npt.NDArray[np.int64],
        *,
        special: bool,
    ) -> Iterator[_Batch]:
        """Tokenize in chunks, sort each chunk by token length (longest first), and cut it into
        batches of at most ``batch_size`` sentences and ``max_batch_tokens`` padded tokens,
        each padded to its own longest sentence. ``lengths_out`` receives each sentence's token
        count before truncation."""
        if isinstance(sentences, str):
            raise InputValidationError("pass a list of sentences, not a single string")
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                raise InputValidationError(f"sentence {i} is {type(s).__name__}, not str")
        size = batch_size or self.batch_size
        if size < 1:
            raise InputValidationError(f"batch_size must be >= 1, got {size}")
        pad_id = self.tokenizer.pad_token_id or 0
        limit, trailing = self.max_seq_length, self._trailing_specials
        n = len(sentences)
        with tqdm(
            total=n, unit="sent", desc="Encoding", disable=not show_progress_bar or n == 0
        ) as bar:
            for start in range(0, n, _CHUNK_SENTENCES):
                chunk = list(sentences[start : start + _CHUNK_SENTENCES])
                # Untruncated, so the counts are the real ones; cut below as the tokenizer
                # would (the end of the text goes, the trailing special tokens stay).
                encoded = self.tokenizer(
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
                for rows in self._cut(order, lengths, size):
                    width = self._padded_width(int(lengths[rows[0]]))
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
                    yield _Batch(
                        positions=rows.astype(np.int64) + start,
                        input_ids=torch.from_numpy(input_ids).to(self.device),
                        attention_mask=torch.from_numpy(mask).to(self.device),
                        keep=keep,
                    )
                    bar.update(len(rows))

    def _padded_width(self, longest: int) -> int:
        """``longest`` rounded up to a multiple of ``pad_to_multiple_of`` (within the position
        table)."""
        step = self.pad_to_multiple_of
        if step is None or step <= 1:
            return longest
        limit = int(getattr(self.config, "max_position_embeddings", 512) or 512)
        return max(longest, min(-(-longest // step) * step, limit))

    def _cut(
        self, order: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64], size: int
    ) -> Iterator[npt.NDArray[np.int64]]:
        """Rows (longest first) in batches of <= ``size`` sentences whose padded size, rows x
        longest, padded as the batch will be, stays within ``max_batch_tokens`` (a longer
        sentence still goes, alone)."""
        budget = self.max_batch_tokens
        b = 0
        while b < len(order):
            width = self._padded_width(int(lengths[order[b]]))
            rows = size if budget is None else max(1, min(size, budget // max(width, 1)))
            yield order[b : b + rows]
            b += rows


def _cut_row(row: list[int], length: int, trailing: int) -> list[int]:
    """The first ``length`` entries of a tokenized sentence, its ``trailing`` special tokens
    kept at the end — what the tokenizer's own truncation gives."""
    return row[: length - trailing] + (row[-trailing:] if trailing else [])


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
