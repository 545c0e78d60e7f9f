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
import math
from collections.abc import Sequence
from dataclasses import dataclass
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
        model.to(target)  # type: ignore[arg-type]  # transformers types .to oddly
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


@dataclass(frozen=True)
class _Sampling:
    """How each next token is drawn (see ``SimBertGenerator.generate``)."""

    temperature: float
    top_p: float
    no_repeat_ngram_size: int
    generator: torch.Generator


@dataclass(frozen=True)
class Paraphrase:
    """A generated sentence and its cosine to the input ([CLS] vectors), in [-1, 1]."""

    text: str
    score: float


class SimBertGenerator:
    """Paraphrases by sampling from a SimBERT model and ranking with its own [CLS] vectors.

    Args:
        simbert: A trained SimBERT model (e.g. by ``sentsim train-simbert``).
    """

    def __init__(self, simbert: SimBertModel) -> None:
        self.simbert = simbert
        # Lets BERT keep keys/values between steps; every call passes an explicit 4-D mask, so
        # the flag never makes an attention causal by itself.
        simbert.model.config.is_decoder = True
        tokenizer = simbert.tokenizer
        self.sep_id = int(tokenizer.sep_token_id)
        self.blocked = [
            int(i)
            for i in (
                tokenizer.cls_token_id,
                tokenizer.pad_token_id,
                tokenizer.mask_token_id,
                tokenizer.unk_token_id,
            )
            if i is not None
        ]

    @classmethod
    def load(cls, path: str, *, device: str | None = None) -> SimBertGenerator:
        """Load a SimBERT checkpoint folder. Raises ``ModelLoadError``."""
        return cls(SimBertModel.load(path, device=device))

    @property
    def max_source_tokens(self) -> int:
        """Longest text (in tokens, [CLS] and [SEP] included) a paraphrase is made of whole."""
        return int(self.simbert.max_length)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as ``generate`` reads it, [CLS] and [SEP] included."""
        return len(self.simbert.tokenizer(text)["input_ids"])

    @torch.inference_mode()
    def generate(
        self,
        text: str,
        num_return_sequences: int = 32,
        top_k: int = 5,
        top_p: float = 0.95,
        temperature: float = 1.0,
        max_new_tokens: int = 32,
        no_repeat_ngram_size: int = 3,
        seed: int | None = None,
        use_cache: bool = False,
    ) -> list[Paraphrase]:
        """Sample ``num_return_sequences`` candidates in one batch, return the best ``top_k``.

        Decoding always ends: [SEP] stays in the nucleus at every step (consistent top-p),
        candidates stop at ``max_new_tokens``, and a token that would repeat an n-gram of the
        candidate is excluded (DESIGN.md §5). Candidates are ranked by cosine of their [CLS]
        vectors to the input's; duplicates, empty strings and the input itself are dropped.

        Args:
            text: The sentence to paraphrase.
            num_return_sequences: n, candidates sampled.
            top_k: k, paraphrases returned (fewer if fewer distinct ones came out).
            top_p: Nucleus: sample from the smallest set of tokens with this much probability.
            temperature: Softmax temperature (>= ``MIN_TEMPERATURE``); higher is more varied.
            max_new_tokens: Length cap of a candidate, in tokens.
            no_repeat_ngram_size: Block repeated n-grams of this size (0: off).
            seed: Seeds the sampling; the same seed gives the same candidates.
            use_cache: Keep the keys/values of the source and the tokens generated so far, so a
                step runs one token (4-8x cheaper per step than recomputing 16-40 tokens at
                n = 32). Off by default: measured end to end on the quora-para model it was
                slower (2.08 vs 1.74 s per source, /paraphrase p50 2,077 vs 2,011 ms), since
                all n rows then run to the end while recomputation drops finished candidates.

        Returns:
            Up to k paraphrases, most similar to the input first.

        Raises:
            InputValidationError: Empty text or knobs out of range.
        """
        if not text.strip():
            raise InputValidationError("text is empty")
        ok = MIN_TEMPERATURE <= temperature and 0 < top_p <= 1
        if not (ok and num_return_sequences >= 1 and top_k >= 1):
            raise InputValidationError(
                f"need 0 < top_p <= 1, temperature >= {MIN_TEMPERATURE}, n >= 1, k >= 1"
            )
        self.simbert.model.eval()
        generator = torch.Generator(device="cpu")
        generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**31, (1,))))
        source = self.simbert.tokenizer(
            [text], truncation=True, max_length=self.simbert.max_length, return_tensors="pt"
        )["input_ids"][0]
        n = num_return_sequences
        sampling = _Sampling(temperature, top_p, no_repeat_ngram_size, generator)
        decode = self._decode_cached if use_cache else self._decode_recomputed
        generated = decode(source, n, max_new_tokens, sampling)
        candidates = []
        for row in generated.tolist():
            tokens = row[: row.index(self.sep_id)] if self.sep_id in row else row
            candidates.append(
                self.simbert.tokenizer.decode(tokens, skip_special_tokens=True).strip()
            )
        return self._rank(text, candidates, top_k)

    def _next(self, hidden_last: Tensor, generated: Tensor, sampling: _Sampling) -> Tensor:
        """Sample the next token of each row from the last position's hidden state."""
        logits = self.simbert.model.cls(hidden_last).float().cpu() / sampling.temperature
        logits[:, self.blocked] = -math.inf
        self._block_repeats(logits, generated, sampling.no_repeat_ngram_size)
        return self._sample(logits, sampling.top_p, sampling.generator)

    @torch.inference_mode()
    def _decode_cached(
        self,
        source: Tensor,
        n: int,
        max_new_tokens: int,
        sampling: _Sampling,
    ) -> Tensor:
        from transformers import DynamicCache

        model, device = self.simbert.model, self.simbert.device
        ids = source.expand(n, -1).to(device)
        types = torch.zeros_like(ids)
        mask = seq2seq_attention_mask(types, torch.ones_like(ids))[:, None]
        out = model.bert(
            input_ids=ids,
            token_type_ids=types,
            attention_mask=mask,
            past_key_values=DynamicCache(),
            use_cache=True,
        )
        generated = torch.zeros((n, 0), dtype=torch.long)
        finished = torch.zeros(n, dtype=torch.bool)
        pad_id = int(self.simbert.tokenizer.pad_token_id)
        length = len(source)
        for _ in range(max_new_tokens):
            next_ids = self._next(out.last_hidden_state[:, -1], generated, sampling)
            next_ids[finished] = pad_id
            generated = torch.cat([generated, next_ids[:, None]], dim=1)
            finished |= next_ids == self.sep_id
            if bool(finished.all()):
                break
            length += 1
            # The new target token sees the whole source and every earlier target token.
            out = model.bert(
                input_ids=next_ids[:, None].to(device),
                token_type_ids=torch.ones((n, 1), dtype=torch.long, device=device),
                attention_mask=torch.ones((n, 1, 1, length), dtype=torch.bool, device=device),
                position_ids=torch.full((n, 1), length - 1, dtype=torch.long, device=device),
                past_key_values=out.past_key_values,
                use_cache=True,
            )
        return generated

    @torch.inference_mode()
    def _decode_recomputed(
        self,
        source: Tensor,
        n: int,
        max_new_tokens: int,
        sampling: _Sampling,
    ) -> Tensor:
        device = self.simbert.device
        generated = torch.zeros((n, 0), dtype=torch.long)
        finished = torch.zeros(n, dtype=torch.bool)
        pad_id = int(self.simbert.tokenizer.pad_token_id)
        for _ in range(max_new_tokens):
            # Only unfinished candidates are run: finished ones just carry padding.
            active = (~finished).nonzero()[:, 0]
            tail = generated[active]
            ids = torch.cat([source.expand(len(active), -1), tail], dim=1).to(device)
            types = torch.cat(
                [torch.zeros(len(active), len(source), dtype=torch.long), torch.ones_like(tail)],
                dim=1,
            ).to(device)
            batch = {
                "input_ids": ids,
                "token_type_ids": types,
                "attention_mask": torch.ones_like(ids),
            }
            hidden, _, _ = self.simbert.forward(batch)
            next_ids = torch.full((n,), pad_id, dtype=torch.long)
            next_ids[active] = self._next(hidden[:, -1], tail, sampling)
            generated = torch.cat([generated, next_ids[:, None]], dim=1)
            finished |= next_ids == self.sep_id
            if bool(finished.all()):
                break
        return generated

    def _sample(self, logits: Tensor, top_p: float, generator: torch.Generator) -> Tensor:
        probs = torch.softmax(logits, dim=-1)
        ordered, order = torch.sort(probs, descending=True, dim=-1)
        outside = ordered.cumsum(dim=-1) - ordered > top_p  # beyond the nucleus
        keep = torch.zeros_like(probs, dtype=torch.bool).scatter(1, order, ~outside)
        keep[:, self.sep_id] = True  # [SEP] always reachable: decoding can always stop
        probs = torch.where(keep, probs, torch.zeros_like(probs))
        return torch.multinomial(probs / probs.sum(dim=-1, keepdim=True), 1, generator=generator)[
            :, 0
        ]

    @staticmethod
    def _block_repeats(logits: Tensor, generated: Tensor, size: int) -> None:
        if size < 1 or generated.shape[1] < size - 1:
            return
        for row, tokens in enumerate(generated.tolist()):
            prefix = tuple(tokens[len(tokens) - size + 1 :]) if size > 1 else ()
            seen = {
                tokens[i + size - 1]
                for i in range(len(tokens) - size + 1)
                if tuple(tokens[i : i + size - 1]) == prefix
            }
            if seen:
                logits[row, list(seen)] = -math.inf

    def _rank(self, text: str, candidates: list[str], k: int) -> list[Paraphrase]:
        def key(s: str) -> str:
            return " ".join(s.lower().split())

        distinct: dict[str, str] = {}
        for c in candidates:
            if c and key(c) != key(text):
                distinct.setdefault(key(c), c)
        if not distinct:
            return []
        texts = list(distinct.values())
        vectors = self.simbert.embed([text, *texts])
        scores = (vectors[1:] @ vectors[0]).tolist()
        ranked = sorted(zip(texts, scores, strict=True), key=lambda t: -t[1])[:k]
        return [Paraphrase(t, float(s)) for t, s in ranked]
