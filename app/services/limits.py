"""Request limits: how much one request may ask for, each bound a setting named in its error."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.errors import BatchTooLargeError, EmptyInputError


@dataclass(frozen=True)
class Limits:
    """Request limits. Every refusal is a ``BatchTooLargeError`` (HTTP 413) naming the limit
    and its ``SENTSIM_*`` setting, or an ``EmptyInputError`` (400) for empty input.

    Attributes:
        max_client_batch_size: Sentences (or queries) in one request.
        max_sentence_chars: Characters in one sentence or document text.
        max_top_k: Largest ``top_k`` of a search.
        max_upsert_documents: Documents in one upsert.
        max_rerank_candidates: Largest ``rerank.candidates`` of a search.
        max_metadata_bytes: A document's metadata as UTF-8 JSON, in bytes.
        max_metadata_depth: Nesting of a document's metadata (``{"a": 1}`` has depth 1).
        max_filter_keys: Keys of a search ``filter``.
        max_response_bytes: Text and metadata a search may return (or rerank), in bytes.
    """

    max_client_batch_size: int = 2048
    max_sentence_chars: int = 10_000
    max_top_k: int = 100
    max_upsert_documents: int = 1000
    max_rerank_candidates: int = 200
    max_metadata_bytes: int = 16 * 1024
    max_metadata_depth: int = 8
    max_filter_keys: int = 32
    max_response_bytes: int = 16 * 1024 * 1024

    def check_sentences(self, sentences: Sequence[str], what: str = "sentences") -> None:
        """Raise ``EmptyInputError`` / ``BatchTooLargeError`` for empty or oversize input."""
        if not sentences:
            raise EmptyInputError(f"no {what} given")
        if len(sentences) > self.max_client_batch_size:
            raise BatchTooLargeError(
                f"{len(sentences)} {what} in one request; the limit is "
                f"{self.max_client_batch_size} (SENTSIM_MAX_CLIENT_BATCH_SIZE): split the request"
            )
        for i, s in enumerate(sentences):
            self.check_text(s, f"{what}[{i}]")

    def check_text(self, text: str, where: str) -> None:
        """Raise ``EmptyInputError`` for a blank text, ``BatchTooLargeError`` for a long one."""
        if not text.strip():
            raise EmptyInputError(f"{where} is empty")
        if len(text) > self.max_sentence_chars:
            raise BatchTooLargeError(
                f"{where} has {len(text)} characters; the limit is {self.max_sentence_chars} "
                "(SENTSIM_MAX_SENTENCE_CHARS)"
            )

    def check_metadata(self, metadata: Mapping[str, Any], where: str) -> None:
        """Raise ``BatchTooLargeError`` for metadata too deep or too large."""
        if _depth_over(metadata, self.max_metadata_depth):
            raise BatchTooLargeError(
                f"{where} nests deeper than {self.max_metadata_depth} levels "
                "(SENTSIM_MAX_METADATA_DEPTH): flatten it"
            )
        size = len(json.dumps(metadata, ensure_ascii=False).encode())
        if size > self.max_metadata_bytes:
            raise BatchTooLargeError(
                f"{where} is {size} bytes as JSON; the limit is {self.max_metadata_bytes} "
                "(SENTSIM_MAX_METADATA_BYTES): keep large payloads outside the collection"
            )

    def check_filter(self, filter: Mapping[str, Any] | None) -> None:
        """Raise ``BatchTooLargeError`` for a filter with too many keys."""
        if filter is not None and len(filter) > self.max_filter_keys:
            raise BatchTooLargeError(
                f"filter has {len(filter)} keys; the limit is {self.max_filter_keys} "
                "(SENTSIM_MAX_FILTER_KEYS)"
            )

    def check_response_bytes(self, size: int) -> None:
        """Raise ``BatchTooLargeError`` when a search's hits hold more than the limit."""
        if size > self.max_response_bytes:
            raise BatchTooLargeError(
                f"the hits of this search hold about {size} bytes of text and metadata; the "
                f"limit is {self.max_response_bytes} (SENTSIM_MAX_RESPONSE_BYTES): ask for fewer "
                "queries, a smaller top_k or fewer rerank candidates"
            )


def _depth_over(value: Any, limit: int) -> bool:
    """Whether a JSON value nests deeper than ``limit`` containers (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
