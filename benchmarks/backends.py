"""Vector backends: the FAISS collection (SQLite + FAISS) against the Milvus one (Milvus Lite,
in-process), same documents, same queries, one run.

``--documents`` real sentences (quora-para, STS-B train, paraphrase-en; the bundled encoder's
vectors, cached) with metadata ``{"topic": i % 10}`` go into each backend in upserts of 1,000:
ingest documents/s, sealed included (the FAISS index file saved, Milvus flushed). Then 300
STS-B dev sentences (``--queries``) are searched (``top_k`` 10), without a filter and with
``{"topic": 3}`` (a tenth of the documents): p50/p99 per query, and recall@10 against exact
search (numpy, the same filter applied). Milvus Lite runs Milvus's engine in this process; a
Milvus server adds a network hop and spreads the work over machines.

    python benchmarks/backends.py [--documents 100000] [--queries 300] [--filtered-queries 20]
        [--backends faiss milvus]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
TOPICS = 10
BATCH = 1000


def exact_top10(
    unit_docs: np.ndarray, unit_queries: np.ndarray, allowed: np.ndarray
) -> list[set[int]]:
    """Indexes of the 10 nearest allowed documents of each query (brute force)."""
    scores = unit_queries @ unit_docs[allowed].T
    best = np.argsort(-scores, axis=1)[:, :10]
    return [set(allowed[row].tolist()) for row in best]


def run_backend(
    name: str,
    make: Callable[[str], Any],
    texts: list[str],
    raw: np.ndarray,
    queries: np.ndarray,
    filtered_queries: int,
) -> list[dict[str, Any]]:
    from app.index.store import Document

    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    unit_q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    topics = np.arange(len(texts)) % TOPICS
    rows = []
    for index in ("flat", "hnsw"):
        collection = make(index)
        start = time.perf_counter()
        for lo in range(0, len(texts), BATCH):
            hi = min(lo + BATCH, len(texts))
            docs = [Document(f"d{i}", texts[i], {"topic": int(topics[i])}) for i in range(lo, hi)]
            collection.upsert(docs, raw[lo:hi])
        collection.checkpoint()  # FAISS: the index file saved; Milvus: segments sealed
        ingest_s = time.perf_counter() - start
        for where in (None, {"topic": 3}):
            allowed = np.arange(len(texts)) if where is None else np.flatnonzero(topics == 3)
            asked = queries if where is None else queries[:filtered_queries]
            exact = exact_top10(unit, unit_q[: len(asked)], allowed)
            collection.search(asked[:2], 10, where)  # warm-up
            latencies, recalls = [], []
            for q, truth in zip(asked, exact, strict=True):
                t = time.perf_counter()
                hits = collection.search(q[None, :], 10, where)[0]
                latencies.append(time.perf_counter() - t)
                recalls.append(len({int(h.id[1:]) for h in hits} & truth) / 10)
            ms = np.array(latencies) * 1000
            row = {
                "backend": name,
                "index": index,
                "filter": "topic = 3 (10%)" if where else "none",
                "queries": len(asked),
                "ingest_docs_per_s": len(texts) / ingest_s,
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
                "recall_at_10": float(np.mean(recalls)),
            }
            print(
                f"{name:7s} {index:5s} filter {row['filter']:15s} ingest "
                f"{row['ingest_docs_per_s']:7.0f} docs/s  p50 {row['p50_ms']:6.2f} ms  "
                f"p99 {row['p99_ms']:6.2f} ms  recall@10 {row['recall_at_10']:.3f}",
                flush=True,
            )
            rows.append(row)
        collection.destroy()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--filtered-queries",
        type=int,
        default=None,
        help="queries searched with the filter (default: --queries; Milvus Lite's JSON filter "
        "takes seconds a query at 100k)",
    )
    parser.add_argument("--backends", nargs="+", default=["faiss", "milvus"])
    parser.add_argument("--json", type=Path, default=RESULTS / "backends.json")
    args = parser.parse_args()

    from serve import corpus, corpus_vectors  # benchmarks/serve.py, beside this script

    from app.core.datasets import read_sts
    from app.encoding.bert import BertEncoder
    from app.index.catalog import FolderCatalog
    from app.index.milvus_catalog import MilvusCatalog

    encoder = BertEncoder(device="cpu", batch_size=64)
    texts = corpus(args.documents)
    raw = corpus_vectors(texts, encoder)
    queries = encoder.encode(read_sts(DATA / "stsb-en" / "dev.tsv").sentences1[: args.queries])
    rows = []
    filtered = args.filtered_queries or len(queries)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backends:
            catalog = (
                FolderCatalog(Path(tmp) / "indexes")
                if name == "faiss"
                else MilvusCatalog(str(Path(tmp) / "milvus" / "milvus.db"))
            )
            catalog.start()

            def make(index: str, catalog: Any = catalog) -> Any:
                meta = {"name": index, "index": index, "dimension": raw.shape[1]}
                return catalog.create(meta, None)

            rows += run_backend(name, make, texts, raw, queries, filtered)
            catalog.close()

    print(f"\n{len(texts)} documents, top_k 10, {os.cpu_count()} cores")
    head = ("backend", "index", "filter", "queries", "ingest/s", "p50", "p99", "R@10")
    print("{:8s} {:5s} {:16s} {:>7s} {:>9s} {:>7s} {:>7s} {:>6s}".format(*head))
    for r in rows:
        print(
            f"{r['backend']:8s} {r['index']:5s} {r['filter']:16s} {r['queries']:7d} "
            f"{r['ingest_docs_per_s']:9.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
            f"{r['recall_at_10']:6.3f}"
        )
    result = {
        "benchmark": "backends",
        "documents": len(texts),
        "queries": len(queries),
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
