"""BertEncoder: sentence and token vectors from any Hugging Face BERT-family checkpoint."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch

from app.core.errors import InputValidationError, ModelLoadError
from app.core.types import Embeddings
from app.encoding.base import Encoded
from app.encoding.batches import Batch, BatchShape, length_sorted_batches, trailing_specials
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
from app.encoding.tracing import LastHiddenState, interpreted, trace_last_hidden
from app.similarity.metrics import pairwise_cos_sim

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")


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
            self._traced = trace_last_hidden(
                self.model, self.tokenizer, self.device, self.autocast()
            )
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

    def _forward(self, batch: Batch, *, output_hidden_states: bool) -> Any:
        with torch.inference_mode(), self.autocast():
            if self._traced is not None and not output_hidden_states:
                with interpreted():
                    hidden = self._traced(batch.input_ids, batch.attention_mask)
                return LastHiddenState(hidden)
            return self.model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                output_hidden_states=output_hidden_states,
            )

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
        return trailing_specials(self.tokenizer, self.max_seq_length)

    def _batches(
        self,
        sentences: Sequence[str],
        batch_size: int | None,
        show_progress_bar: bool,
        lengths_out: npt.NDArray[np.int64],
        *,
        special: bool,
    ) -> Iterator[Batch]:
        """``length_sorted_batches`` with this encoder's tokenizer, limits and device."""
        return length_sorted_batches(
            self.tokenizer,
            sentences,
            BatchShape(
                batch_size=batch_size or self.batch_size,
                max_seq_length=self.max_seq_length,
                max_batch_tokens=self.max_batch_tokens,
                pad_to_multiple_of=self.pad_to_multiple_of,
                max_positions=int(getattr(self.config, "max_position_embeddings", 512) or 512),
                trailing_specials=self._trailing_specials,
            ),
            self.device,
            lengths_out,
            special=special,
            show_progress_bar=show_progress_bar,
        )


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
