"""Analysis features: clustering quality and speed, duplicates, explanation latency.

1. Quality (quora-para dev, same run): questions grouped by their duplicate links (gold groups,
   by union-find), encoded with the bundled all-MiniLM-L6-v2; clusters from InfoMap and from
   threshold community detection on the exact 10-NN graph (what a ``flat`` collection gives),
   and from sentence-transformers' ``community_detection`` on all pairs. Pairwise precision,
   recall and F1: a pair of questions is predicted together when they share a cluster, truly
   together when they share a gold group.
2. Speed: 100k English sentences (quora-para questions, then STS-B and paraphrase-en) stored
   in a collection (encoding excluded, vectors cached under --cache), clustered through
   ``Collection.neighbors`` + each method, for a ``flat`` and an ``hnsw`` index; duplicates
   (threshold 0.9) likewise.
3. Explain latency: ``POST /similarity/explain``'s work (integrated gradients, 50 steps) on 20
   STS-B test pairs, p50 / p90 per pair, at the served default precision (auto).

    python benchmarks/analysis.py [--docs 100000] [--json PATH] [--cache DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def gold_groups(pairs: Iterable[tuple[str, str]]) -> tuple[list[str], np.ndarray]:
    """Distinct questions and their gold group labels (connected components of the links)."""
    index: dict[str, int] = {}
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        for s in (a, b):
            if s not in index:
                index[s] = len(parent)
                parent.append(len(parent))
        ra, rb = find(index[a]), find(index[b])
        if ra != rb:
            parent[ra] = rb
    return list(index), np.array([find(i) for i in range(len(parent))], dtype=np.int64)


def together(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (i < j) sharing a label (label -1: alone)."""
    pairs: set[tuple[int, int]] = set()
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    for group in np.split(order, cuts):
        if len(group) < 2 or labels[group[0]] < 0:
            continue
        g = np.sort(group)
        pairs.update((int(a), int(b)) for k, a in enumerate(g) for b in g[k + 1 :])
    return pairs


def labels_of(clusters: Iterable[Iterable[int]], n: int) -> np.ndarray:
    labels = np.full(n, -1, dtype=np.int64)
    for c, members in enumerate(clusters):
        labels[np.asarray(list(members), dtype=np.int64)] = c
    return labels


def pairwise_prf(predicted: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    p, g = together(predicted), together(gold)
    hit = len(p & g)
    precision = hit / len(p) if p else 0.0
    recall = hit / len(g) if g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def exact_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest others by inner product (FAISS flat), self removed."""
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    scores, found = index.search(x, k + 1)
    own = found == np.arange(len(x))[:, None]
    keep = np.argsort(own, axis=1, kind="stable")[:, :k]  # drop the self column
    return np.take_along_axis(found, keep, 1), np.take_along_axis(scores, keep, 1)


def quality(encoder: Any, thresholds: list[float]) -> list[dict[str, Any]]:
    from sentence_transformers.util import community_detection

    from app.core.datasets import read_pairs
    from app.similarity.clustering import infomap_clusters, threshold_clusters
    from app.transforms.normalize import l2_normalize

    pairs = read_pairs(DATA / "quora-para" / "dev.tsv")
    questions, gold = gold_groups(pairs)
    x = l2_normalize(encoder.encode(questions))
    neighbors, scores = exact_knn(x, 10)
    rows = []
    for t in thresholds:
        runs = {
            "infomap (10-NN)": lambda t=t: infomap_clusters(neighbors, scores, x, threshold=t),
            "threshold (10-NN)": lambda t=t: threshold_clusters(neighbors, scores, x, threshold=t),
            "ST community_detection": lambda t=t: community_detection(
                x, threshold=t, min_community_size=2
            ),
        }
        for name, run in runs.items():
            result, seconds = timed(run)
            clusters = result if isinstance(result, list) else result.clusters
            p, r, f = pairwise_prf(labels_of(clusters, len(x)), gold)
            rows.append(
                {
                    "method": name,
                    "threshold": t,
                    "precision": p,
                    "recall": r,
                    "f1": f,
                    "clusters": len(clusters),
                    "seconds": seconds,
                    "questions": len(x),
                    "gold_groups": len(set(gold.tolist())),
                }
            )
    return rows


def speed(encoder: Any, n_docs: int, cache: Path) -> list[dict[str, Any]]:
    from app.core.datasets import read_pairs

    sources = [DATA / "quora-para" / f"{split}.tsv" for split in ("train", "dev")]
    sources += [DATA / "stsb-en" / f"{split}.tsv" for split in ("train", "dev", "test")]
    sources += [DATA / "paraphrase-en" / "train.tsv"]
    pairs = [pair for path in sources for pair in read_pairs(path)]
    texts = list(dict.fromkeys(s for pair in pairs for s in pair))[:n_docs]
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"quora-train-{len(texts)}-{encoder.precision}.npy"
    if path.exists():
        raw = np.load(path)
    else:
        raw = encoder.encode(texts)
        np.save(path, raw)
    return [row for index in ("flat", "hnsw") for row in speed_on(index, texts, raw)]


def speed_on(index: str, texts: list[str], raw: np.ndarray) -> list[dict[str, Any]]:
    """Store the documents in a collection with this index, then time its kNN graph and each
    method on it."""
    from app.index.collection import Collection
    from app.index.store import Document
    from app.similarity.clustering import duplicate_pairs, infomap_clusters, threshold_clusters

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        meta = {"name": "bench", "index": index, "dimension": raw.shape[1]}
        collection = Collection.create(Path(tmp), meta)
        for start in range(0, len(texts), 10_000):
            end = min(start + 10_000, len(texts))
            docs = [Document(f"q{i}", texts[i], {}) for i in range(start, end)]
            collection.upsert(docs, raw[start:end])
        graph, knn_s = timed(functools.partial(collection.neighbors, 10))
        _, vectors, neighbors, scores = graph
        runs: dict[str, Callable[[], Any]] = {
            "infomap": functools.partial(
                infomap_clusters, neighbors, scores, vectors, threshold=0.75
            ),
            "threshold": functools.partial(
                threshold_clusters, neighbors, scores, vectors, threshold=0.75
            ),
            "duplicates": functools.partial(duplicate_pairs, neighbors, scores, threshold=0.9),
        }
        for name, run in runs.items():
            result, seconds = timed(run)
            found = len(result[0]) if name == "duplicates" else len(result.clusters)
            rows.append(
                {
                    "index": index,
                    "method": name,
                    "documents": len(texts),
                    "knn_seconds": knn_s,
                    "method_seconds": seconds,
                    "total_seconds": knn_s + seconds,
                    "found": found,
                }
            )
        collection.close()
    return rows


def explain_latency(n_pairs: int = 20, steps: int = 50) -> dict[str, Any]:
    from app.core.datasets import read_sts
    from app.encoding.bert import BertEncoder
    from app.services.encoders import explain

    encoder = BertEncoder("all-MiniLM-L6-v2", precision="auto", device="cpu")
    pairs = read_sts(DATA / "stsb-en" / "test.tsv")
    explain(encoder, "warm up", "the model", n_steps=steps)
    seconds, errors = [], []
    for i in range(0, n_pairs * 50, 50):
        result, s = timed(
            lambda i=i: explain(encoder, pairs.sentences1[i], pairs.sentences2[i], n_steps=steps)
        )
        seconds.append(s)
        gap = abs(result.score - result.baseline_score)
        errors.append(result.completeness_error / gap if gap else 0.0)
    q = statistics.quantiles(seconds, n=10)
    return {
        "pairs": n_pairs,
        "steps": steps,
        "precision": encoder.precision,
        "p50_ms": 1000 * statistics.median(seconds),
        "p90_ms": 1000 * q[-1],
        "max_relative_completeness_error": max(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.7, 0.75, 0.8, 0.85])
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "results" / "cache")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/analysis.json")
    args = parser.parse_args()

    from app.encoding.bert import BertEncoder

    encoder = BertEncoder("all-MiniLM-L6-v2", precision="auto", device="cpu", batch_size=64)
    quality_rows = quality(encoder, args.thresholds)
    print(
        f"\nClustering quality, quora-para dev ({quality_rows[0]['questions']} questions, "
        f"{quality_rows[0]['gold_groups']} gold groups), pairwise:"
    )
    print(f"{'method':<24} {'thr':>5} {'P':>6} {'R':>6} {'F1':>6} {'clusters':>9} {'s':>7}")
    for r in quality_rows:
        print(
            f"{r['method']:<24} {r['threshold']:>5.2f} {r['precision']:>6.3f} {r['recall']:>6.3f} "
            f"{r['f1']:>6.3f} {r['clusters']:>9d} {r['seconds']:>7.2f}"
        )
    speed_rows = speed(encoder, args.docs, args.cache)
    print(f"\nSpeed, {speed_rows[0]['documents']} documents, encoding excluded:")
    print(f"{'index':<6} {'method':<11} {'kNN s':>7} {'method s':>9} {'total s':>8} {'found':>8}")
    for r in speed_rows:
        print(
            f"{r['index']:<6} {r['method']:<11} {r['knn_seconds']:>7.1f} "
            f"{r['method_seconds']:>9.1f} {r['total_seconds']:>8.1f} {r['found']:>8d}"
        )
    latency = explain_latency()
    print(
        f"\nExplain (integrated gradients, {latency['steps']} steps, {latency['precision']}): "
        f"p50 {latency['p50_ms']:.0f} ms, p90 {latency['p90_ms']:.0f} ms per pair over "
        f"{latency['pairs']} STS-B pairs; completeness error <= "
        f"{100 * latency['max_relative_completeness_error']:.3f}% of |score - baseline|"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "quality": quality_rows,
                "speed": speed_rows,
                "explain": latency,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
