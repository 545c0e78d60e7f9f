"""SimBERT: one BERT that retrieves and generates sentences of the same meaning.

Su Jianlin, "SimBERT: integrating retrieval and generation into one BERT" (ZhuiyiAI, 2020),
building on UniLM (Dong et al., "Unified Language Model Pre-training for Natural Language
Understanding and Generation", NeurIPS 2019). Trained on pairs (a, b) with two losses at once
(DESIGN.md §5):

1. seq2seq: input ``[CLS] a [SEP] b [SEP]`` with segment ids 0 / 1 and the UniLM mask (segment
   a bidirectional, segment b causal, a never sees b); cross-entropy of each token of b (and
   its closing [SEP]) from the position before it, through the masked-LM head;
2. retrieval: the L2-normalised [CLS] vectors of the batch's sentences, cosine matrix with the
   diagonal masked, scaled by 30, softmax cross-entropy where each sentence's positive is its
   partner.

Because segment a never attends to b, the [CLS] output of ``[CLS] a [SEP] b [SEP]`` is the
embedding of a alone: the same forward pass serves both losses.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the usual name)
from torch import Tensor

from app.core.errors import InputValidationError, ModelLoadError
from app.encoding.registry import load_failure, resolve_model, verify_checksums

#: Retrieval-loss scale s (SimBERT's 30).
RETRIEVAL_SCALE = 30.0

#: Lowest sampling temperature: logits divided by less overflow to inf (NaN probabilities).
MIN_TEMPERATURE = 0.01


def seq2seq_attention_mask(token_type_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """The UniLM seq2seq mask for a padded batch.

    Query position i may attend key position j iff j is not padding and either j is in the
    source segment (type 0), or both are in the target segment (type 1) and j <= i. So the
    source is bidirectional and never sees the target; the target is causal.

    Args:
        token_type_ids: int (b, T): 0 for ``[CLS] a [SEP]``, 1 for ``b [SEP]``, any for padding.
        attention_mask: int (b, T): 1 for real tokens, 0 for padding.

    Returns:
        bool (b, T, T): ``mask[k, i, j]`` True where query i may attend key j.
    """
    segment = token_type_ids * attention_mask
    index = torch.cumsum(segment, dim=1)  # 0 on the source, 1..n along the target
    allowed = index[:, None, :] <= index[:, :, None]
    return allowed & attention_mask[:, None, :].bool()


def seq2seq_targets(input_ids: Tensor, token_type_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """Labels for next-token prediction on the target segment: ``labels[:, i]`` is the token at
    i + 1 when that token is a real target token (b or its closing [SEP]), else -100 (ignored).

    Returns:
        int64 (b, T).
    """
    nxt = torch.full_like(input_ids, -100)
    is_target = (token_type_ids[:, 1:] == 1) & (attention_mask[:, 1:] == 1)
    nxt[:, :-1] = torch.where(is_target, input_ids[:, 1:], torch.full_like(input_ids[:, 1:], -100))
    return nxt


def seq2seq_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over the target positions only.

    Args:
        logits: float (b, T, V) from the masked-LM head, or (n, V) already gathered at the
            labelled positions (then ``labels`` is (n,)).
        labels: int64 (b, T) or (n,), -100 where nothing is predicted.
    """
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100
    )


def retrieval_loss(cls_vectors: Tensor, scale: float = RETRIEVAL_SCALE) -> Tensor:
    """In-batch softmax loss on L2-normalised [CLS] vectors; rows 2k and 2k+1 are partners.

    Args:
        cls_vectors: float (2m, d), interleaved (a_1, b_1, a_2, b_2, ...).
        scale: s, multiplying the cosine logits.

    Returns:
        The mean cross-entropy (a scalar tensor).
    """
    if len(cls_vectors) % 2:
        raise InputValidationError("retrieval_loss needs an even number of rows (pairs)")
    unit = F.normalize(cls_vectors.float(), dim=1)
    logits = unit @ unit.T * scale
    eye = torch.eye(len(unit), dtype=torch.bool, device=unit.device)
    logits = logits.masked_fill(eye, -1e12)
    partners = torch.arange(len(unit), device=unit.device) ^ 1
    return F.cross_entropy(logits, partners)


class SimBertModel:
    """A Hugging Face ``BertForMaskedLM`` used the SimBERT way.

    Loads any BERT checkpoint (a Hub id or local folder, safetensors only); when it has no
    masked-LM head weights (e.g. all-MiniLM-L6-v2) a new head is created whose decoder is tied
    to the word embeddings (transformers' ``tie_word_embeddings``).

    Args:
        model: The ``BertForMaskedLM``.
        tokenizer: Its tokenizer.
        max_length: Longest source or target, in tokens (each segment is cut to it).
    """

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 64) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def load(cls, path: str, *, device: str | None = None, max_length: int = 64) -> SimBertModel:
        """Load a checkpoint (``from_pretrained``, safetensors only, float32 whatever is stored).

        A folder with a ``SHA256SUMS`` file (a shipped model) is verified against it first.

        Raises:
            ModelLoadError: Missing or unreadable checkpoint; a path that is not a folder or a
                Hub id that cannot be had, at once (``resolve_model``).
            ModelIntegrityError: A file differs from its recorded SHA-256.
        """
        from transformers import AutoTokenizer, BertForMaskedLM
        from transformers.utils import logging as hf_logging

        resolved = resolve_model(path)
        if Path(resolved.path).is_dir():
            verify_checksums(Path(resolved.path))
        local_only = resolved.local_files_only
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity(logging.ERROR)  # the "newly initialised head" report
        try:
            tokenizer = AutoTokenizer.from_pretrained(resolved.path, local_files_only=local_only)
            model = BertForMaskedLM.from_pretrained(
                resolved.path,
                use_safetensors=True,
                dtype=torch.float32,
                local_files_only=local_only,
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(load_failure(path, exc)) from exc
        finally:
            hf_logging.set_verbosity(verbosity)
        target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model.to(target)
        return cls(model, tokenizer, max_length)

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are."""
        device: torch.device = next(self.model.parameters()).device
        return device

    def save(self, path: str | Path, *, dtype: torch.dtype | None = None) -> None:
        """``save_pretrained`` (safetensors) of the model and its tokenizer.

        Args:
            path: The folder.
            dtype: Store the weights in this dtype (``torch.float16`` halves the file); the
                model in memory is unchanged.
        """
        model = self.model
        if dtype is not None:
            model = copy.deepcopy(model).to(dtype)
        model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    def encode_pairs(self, sources: Sequence[str], targets: Sequence[str]) -> dict[str, Tensor]:
        """Tokenize ``[CLS] source [SEP] target [SEP]`` for a batch, right-padded.

        Returns:
            ``input_ids``, ``token_type_ids``, ``attention_mask``: int64 (b, T) on the device.
        """
        batch = self.tokenizer(
            list(sources),
            list(targets),
            truncation="longest_first",
            max_length=2 * self.max_length,
            padding=True,
            return_tensors="pt",
        )
        return {
            k: batch[k].to(self.device) for k in ("input_ids", "token_type_ids", "attention_mask")
        }

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Run the UniLM-masked BERT.

        Returns:
            ``(hidden, cls, labels)``: last hidden states float (b, T, d), [CLS] vectors
            (b, d), and next-token labels int64 (b, T) of the target segment.
        """
        mask = seq2seq_attention_mask(batch["token_type_ids"], batch["attention_mask"])
        out = self.model.bert(
            input_ids=batch["input_ids"],
            token_type_ids=batch["token_type_ids"],
            attention_mask=mask[:, None, :, :],
        )
        hidden = out.last_hidden_state
        labels = seq2seq_targets(
            batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]
        )
        return hidden, hidden[:, 0], labels

    def losses(
        self, sentences_a: Sequence[str], sentences_b: Sequence[str]
    ) -> tuple[Tensor, Tensor]:
        """The two SimBERT losses on a batch of m pairs, both directions (2m sequences).

        Returns:
            ``(seq2seq, retrieval)`` scalar tensors.
        """
        sources = [s for a, b in zip(sentences_a, sentences_b, strict=True) for s in (a, b)]
        targets = [s for a, b in zip(sentences_a, sentences_b, strict=True) for s in (b, a)]
        hidden, cls, labels = self.forward(self.encode_pairs(sources, targets))
        where = labels != -100
        # The vocabulary head only where something is predicted: far cheaper than everywhere.
        logits = self.model.cls(hidden[where])
        return seq2seq_loss(logits, labels[where]), retrieval_loss(cls)

    @torch.inference_mode()
    def embed(self, sentences: Sequence[str], batch_size: int = 64) -> Tensor:
        """L2-normalised [CLS] vectors of ``[CLS] s [SEP]``, float32 (n, d), for ranking."""
        self.model.eval()
        out = []
        for start in range(0, len(sentences), batch_size):
            batch = self.tokenizer(
                list(sentences[start : start + batch_size]),
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            mask = batch["attention_mask"].bool()[:, None, None, :]  # bidirectional, explicit
            hidden = self.model.bert(
                input_ids=batch["input_ids"],
                token_type_ids=batch["token_type_ids"],
                attention_mask=mask,
            ).last_hidden_state
            out.append(F.normalize(hidden[:, 0].float(), dim=1))
        return torch.cat(out) if out else torch.zeros(0, self.model.config.hidden_size)
