"""Token-level similarity for the API: WMD / WRD scores, alignments, and a token-vector cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.errors import InputValidationError
from app.similarity.ot import Transport, TransportMethod

#: Similarity methods of POST /similarity and rerankers of search.
TRANSPORT_METHODS: tuple[str, ...] = ("wmd", "wrd")


def check_transport_method(method: str) -> TransportMethod:
    """``method`` as a transport method. Raises ``InputValidationError`` if it is none."""
    if method == "wmd":
        return "wmd"
    if method == "wrd":
        return "wrd"
    raise InputValidationError(f"unknown transport method {method!r}; choose wmd or wrd")


def alignment(
    transport: Transport, source: Sequence[str], target: Sequence[str], top: int = 10
) -> list[dict[str, Any]]:
    """The token pairs that carry the most mass in an optimal transport plan.

    Returns:
        Up to ``top`` ``{"source", "target", "source_index", "target_index", "mass"}``
        (tokens, their positions in ``source`` / ``target``, and the mass moved), heaviest
        first; masses are shares of the total (they sum to at most 1).
    """
    plan = transport.plan
    order = np.argsort(-plan, axis=None)[:top]
    pairs = []
    for flat in order:
        i, j = divmod(int(flat), plan.shape[1])
        if plan[i, j] <= 1e-9:
            break
        pairs.append(
            {
                "source": source[i],
                "target": target[j],
                "source_index": i,
                "target_index": j,
                "mass": float(plan[i, j]),
            }
        )
    return pairs


@dataclass
class _Entry:
    tokens: np.ndarray
    nbytes: int


class TokenCache:
    """LRU cache of documents' token vectors, bounded in bytes (stored as float16).

    Keys are ``(collection, seq)``: a replaced document gets a new seq, so entries never go
    stale; a deleted collection is dropped with ``drop``.

    Args:
        max_bytes: The bound; 0 disables the cache.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, Hashable], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, Hashable]) -> np.ndarray | None:
        """Float32 (n, d) token vectors, or ``None``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.tokens.astype(np.float32)

    def put(self, key: tuple[str, Hashable], tokens: np.ndarray) -> None:
        """Store token vectors, evicting the least recently used past the bound."""
        stored = np.asarray(tokens, dtype=np.float16)
        if stored.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self._entries[key] = _Entry(stored, stored.nbytes)
            self.nbytes += stored.nbytes
            while self.nbytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.nbytes -= evicted.nbytes
