"""Paraphrase retrieval: does a sentence's nearest neighbour, among every sentence of a set of
pairs, turn out to be its partner? (numpy only)"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from app.core.errors import EmptyInputError
from app.core.types import Embeddings

#: Queries scored per matrix product (bounds memory: chunk x number of sentences floats).
_CHUNK = 1024


def partner_recall_at_1(
    pairs: Sequence[tuple[str, str]], encode: Callable[[list[str]], Embeddings]
) -> float:
    """Recall@1 of the partner among all sentences of ``pairs``, both sides of each pair asked.

    Every distinct sentence is encoded once and, if it has a partner (a pair with a different
    sentence), asked once; the corpus is every distinct sentence but the query itself; the query
    is a hit when its nearest neighbour by cosine is one of its partners (a sentence paired with
    several others has several). quora-para dev's metric in ``benchmarks/finetune.py``.

    Args:
        pairs: ``(a, b)`` sentences with the same meaning.
        encode: Sentences -> float array (n, d) of their vectors (any scale: cosine is taken).

    Returns:
        The share of queries whose nearest neighbour is a partner, in [0, 1] (higher is better).

    Raises:
        EmptyInputError: No pair of two different sentences.
    """
    sentences = list(dict.fromkeys(s for pair in pairs for s in pair))
    position = {s: i for i, s in enumerate(sentences)}
    partners: dict[int, set[int]] = {}
    for a, b in pairs:
        if a != b:
            partners.setdefault(position[a], set()).add(position[b])
            partners.setdefault(position[b], set()).add(position[a])
    if not partners:
        raise EmptyInputError("no pair of two different sentences to retrieve")
    vectors = np.asarray(encode(sentences), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    queries = np.array(sorted(partners))
    hits = 0
    for start in range(0, len(queries), _CHUNK):
        rows = queries[start : start + _CHUNK]
        scores = vectors[rows] @ vectors.T
        scores[np.arange(len(rows)), rows] = -np.inf  # not itself
        best = np.argmax(scores, axis=1)
        hits += sum(int(b) in partners[int(q)] for q, b in zip(rows, best, strict=True))
    return hits / len(queries)
