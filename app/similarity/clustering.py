"""Clusters of same-meaning sentences and duplicate pairs from a kNN similarity graph.

The graph is given as each point's ``k`` nearest neighbours (``neighbors`` int64 (n, k),
positions 0..n-1, -1 for none) and their similarities (``scores`` float32 (n, k), cosine,
higher is more similar) — what a FAISS search of a collection's own vectors returns. Nothing
here looks at all n² pairs.

- ``infomap_clusters``: InfoMap (Rosvall & Bergstrom, "Maps of random walks on complex
  networks reveal community structure", PNAS 2008): the partition minimising the map
  equation, the description length of a random walk on the graph. Uses the ``infomap``
  package (GPL-3.0-or-later, an optional extra): ``infomap_available`` says whether it is
  installed.
- ``threshold_clusters``: sentence-transformers' ``community_detection``, on the kNN lists:
  points with the most neighbours above the threshold become centres, largest first, and
  take their unassigned neighbours.
- ``duplicate_pairs``: sentence-transformers' ``paraphrase_mining`` on the kNN lists: every
  pair with similarity >= threshold, once, best first.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.core.types import Embeddings

Neighbors = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]

#: How to get InfoMap, for messages.
INFOMAP_HINT = "pip install 'sentsim[infomap]' (the infomap package, GPL-3.0-or-later)"


@dataclass(frozen=True)
class Clustering:
    """What a clustering gives.

    Attributes:
        clusters: Member positions of each cluster (int64 arrays, sizes >= ``min_size``),
            largest first.
        representatives: Per cluster, the member closest to its members' mean direction.
        unclustered: Points in no cluster of ``min_size`` or more.
        codelength: The map equation's description length of the partition, in bits per
            step of the random walk (InfoMap; ``None`` for threshold clustering).
    """

    clusters: list[npt.NDArray[np.int64]]
    representatives: list[int]
    unclustered: int
    codelength: float | None = None


def infomap_available() -> bool:
    """Whether the optional ``infomap`` package is installed."""
    return importlib.util.find_spec("infomap") is not None


def _edges(
    neighbors: Neighbors, scores: Scores, threshold: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], Scores]:
    """Undirected edges (i < j, each once, the higher score of the two directions kept)
    with similarity >= ``threshold``."""
    n, k = neighbors.shape
    src = np.repeat(np.arange(n, dtype=np.int64), k)
    dst = neighbors.reshape(-1)
    w = scores.reshape(-1)
    keep = (dst >= 0) & (dst != src) & (w >= threshold)
    src, dst, w = src[keep], dst[keep], w[keep]
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    order = np.lexsort((-w, hi, lo))
    lo, hi, w = lo[order], hi[order], w[order]
    first = np.ones(len(lo), dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], w[first].astype(np.float32)


def _finish(
    groups: list[npt.NDArray[np.int64]],
    n: int,
    vectors: Embeddings,
    min_size: int,
    codelength: float | None = None,
) -> Clustering:
    clusters = sorted((g for g in groups if len(g) >= min_size), key=lambda g: (-len(g), g[0]))
    representatives = []
    for members in clusters:
        block = vectors[members]
        centre = block.mean(axis=0)
        representatives.append(int(members[int(np.argmax(block @ centre))]))
    clustered = sum(len(c) for c in clusters)
    return Clustering(clusters, representatives, n - clustered, codelength)


def threshold_clusters(
    neighbors: Neighbors,
    scores: Scores,
    vectors: Embeddings,
    *,
    threshold: float = 0.75,
    min_size: int = 2,
) -> Clustering:
    """Community detection as sentence-transformers' ``community_detection``, over kNN lists.

    Each point's candidate community is itself plus its neighbours with similarity >=
    ``threshold`` (so at most k + 1 members). Candidates are taken largest first (ties: lower
    position first); a candidate keeps only points not yet taken, and becomes a cluster when
    ``min_size`` or more remain.

    Args:
        neighbors: int64 (n, k) neighbour positions, -1 for none (a point's own position may
            appear; it is ignored).
        scores: float32 (n, k) their cosine similarities, higher is more similar.
        vectors: float32 (n, d) unit-length vectors (representatives only).
        threshold: Lowest similarity inside a community, in [-1, 1].
        min_size: Fewest members of a cluster (>= 1).

    Returns:
        ``Clustering`` with ``codelength`` ``None``.
    """
    n = len(neighbors)
    own = np.arange(n)[:, None]
    member = (neighbors >= 0) & (neighbors != own) & (scores >= threshold)
    sizes = member.sum(axis=1) + 1
    taken = np.zeros(n, dtype=bool)
    groups: list[npt.NDArray[np.int64]] = []
    for i in np.argsort(-sizes, kind="stable"):
        if sizes[i] < min_size:
            break
        candidates = np.concatenate(([i], neighbors[i][member[i]])).astype(np.int64)
        free = candidates[~taken[candidates]]
        if len(free) >= min_size:
            taken[free] = True
            groups.append(np.sort(free))
    return _finish(groups, n, vectors, min_size)


def infomap_clusters(
    neighbors: Neighbors,
    scores: Scores,
    vectors: Embeddings,
    *,
    threshold: float = 0.75,
    min_size: int = 2,
    seed: int = 123,
) -> Clustering:
    """InfoMap communities of the undirected kNN graph (edges >= ``threshold``, weighted by
    similarity; a negative weight cannot be a flow, so ``threshold`` is raised to 0).

    Two-level partition, flow model undirected, one seeded trial (same input, same clusters).
    Points without an edge are unclustered.

    Args:
        neighbors, scores, vectors, threshold, min_size: As ``threshold_clusters``.
        seed: InfoMap's random seed.

    Returns:
        ``Clustering`` with the partition's ``codelength`` (bits).

    Raises:
        ModuleNotFoundError: The ``infomap`` package is not installed (``INFOMAP_HINT``).
    """
    if not infomap_available():
        raise ModuleNotFoundError(f"InfoMap clustering needs the infomap package: {INFOMAP_HINT}")
    import infomap

    n = len(neighbors)
    lo, hi, w = _edges(neighbors, scores, max(threshold, 0.0))
    if len(lo) == 0:
        return _finish([], n, vectors, min_size, 0.0)
    network = infomap.Network()
    network.add_links(zip(lo.tolist(), hi.tolist(), w.astype(float).tolist(), strict=True))
    result = infomap.run(network, two_level=True, directed=False, seed=seed, num_trials=1)
    found: dict[int, int] = result.modules()
    nodes = np.fromiter(found.keys(), dtype=np.int64, count=len(found))
    modules = np.fromiter(found.values(), dtype=np.int64, count=len(found))
    order = np.argsort(modules, kind="stable")
    nodes, modules = nodes[order], modules[order]
    cuts = np.flatnonzero(np.diff(modules)) + 1
    groups = [np.sort(g) for g in np.split(nodes, cuts)]
    return _finish(groups, n, vectors, min_size, float(result.codelength))


def duplicate_pairs(
    neighbors: Neighbors, scores: Scores, *, threshold: float = 0.9
) -> tuple[npt.NDArray[np.int64], Scores]:
    """Pairs of points with similarity >= ``threshold`` among the kNN lists, each once.

    Args:
        neighbors, scores: As ``threshold_clusters``.
        threshold: Lowest similarity of a duplicate pair, in [-1, 1].

    Returns:
        ``(pairs int64 (m, 2) with a < b, scores float32 (m,))``, highest score first (ties:
        by a, then b).
    """
    lo, hi, w = _edges(neighbors, scores, threshold)
    order = np.lexsort((hi, lo, -w))
    return np.stack([lo[order], hi[order]], axis=1), w[order]
