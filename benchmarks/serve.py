"""REST benchmark: /v1/embeddings under concurrency, and search on a 100k-document collection.

1. Offline: ``BertEncoder.encode`` throughput on the STS-B test sentences (batch 64), in this
   process, with the server not yet started.
2. ``sentsim serve`` (default model) on a loopback port; 1, 8 and 32 concurrent clients each
   send one sentence per ``POST /v1/embeddings`` for a bounded time. Throughput (sentences/s),
   p50/p99 latency, and the ratio to the offline throughput: how much of the model's speed the
   micro-batcher keeps when every request holds a single sentence.
3. Two collections of the same 100,000 real sentences (quora-para, STS-B train,
   paraphrase-en), ``flat`` (exact)
   and ``hnsw``, written through the store (vectors encoded once, cached under
   benchmarks/results/); the server indexes them at start-up. 300 queries each: p50/p99 search
   latency over HTTP (query encoding included) and recall@10 of hnsw against flat.

    python benchmarks/serve.py [--seconds 10] [--documents 100000] [--json PATH]

Client and server share the machine's cores, so absolute numbers are conservative.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.array(seconds) * 1000, q))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(indexes: Path, port: int) -> subprocess.Popen[bytes]:
    import httpx

    script = Path(sys.executable).parent / "sentsim"
    command = [str(script), "serve", "--port", str(port), "--indexes-dir", str(indexes)]
    process = subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit("sentsim serve exited")
        time.sleep(0.5)
    raise SystemExit("sentsim serve did not become healthy")


async def load(url: str, sentences: list[str], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` concurrent loops, one sentence per request, until ``seconds`` pass.

    aiohttp is the client: on 2 shared cores httpx's own per-request cost capped the server
    at ~200 requests/s, where aiohttp and wrk (C) both measured ~370.
    """
    import aiohttp

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(offset: int, http: aiohttp.ClientSession) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop:
            start = time.perf_counter()
            body = {"input": sentences[i % len(sentences)]}
            async with http.post("/v1/embeddings", json=body) as response:
                await response.read()
                errors += response.status != 200
            latencies.append(time.perf_counter() - start)
            i += clients

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(c, http) for c in range(clients)))
        elapsed = time.perf_counter() - began
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "sentences_per_s": len(latencies) / elapsed,
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
    }


def corpus(n: int) -> list[str]:
    """n distinct real sentences: quora-para questions, STS-B train, paraphrase-en."""
    from app.core.datasets import read_corpus

    seen: dict[str, None] = {}
    sources = ["quora-para/train.tsv", "stsb-en/train.tsv", "paraphrase-en/train.tsv"]
    for path in (DATA / name for name in sources):
        for s in read_corpus(path):
            seen.setdefault(s, None)
            if len(seen) == n:
                return list(seen)
    return list(seen)


def build_collections(indexes: Path, sentences: list[str]) -> None:
    """Write flat and hnsw collections through the store; the server indexes them at start."""
    from app.encoding.bert import BertEncoder
    from app.index.collection import Collection
    from app.index.store import Document

    cache = RESULTS / f"serve_corpus_{len(sentences)}.npy"
    encoder = BertEncoder(device="cpu", batch_size=64)
    if cache.is_file():
        vectors = np.load(cache)
    else:
        print(f"encoding {len(sentences)} documents once (cached in {cache}) ...", flush=True)
        vectors = encoder.encode(sentences, show_progress_bar=True)
        np.save(cache, vectors)
    docs = [Document(f"d{i}", s) for i, s in enumerate(sentences)]
    indexes.mkdir(parents=True, exist_ok=True)
    for spec in ("flat", "hnsw"):
        meta = {"name": spec, "index": spec, "model": encoder.model_name}
        meta |= {"pooling": encoder.pooling, "dimension": encoder.dimension}
        collection = Collection.create(indexes, meta)
        for start in range(0, len(docs), 10_000):
            collection.store.upsert(docs[start : start + 10_000], vectors[start : start + 10_000])
        collection.store.close()


def search_bench(url: str, queries: list[str]) -> dict[str, dict[str, float]]:
    import httpx

    out: dict[str, dict[str, float]] = {}
    ids: dict[str, list[list[str]]] = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        for spec in ("flat", "hnsw"):
            latencies, found = [], []
            for q in queries:
                start = time.perf_counter()
                response = http.post(f"/collections/{spec}/search", json={"query": q, "top_k": 10})
                latencies.append(time.perf_counter() - start)
                found.append([h["id"] for h in response.json()["hits"]])
            ids[spec] = found
            out[spec] = {
                "p50_ms": percentile_ms(latencies, 50),
                "p99_ms": percentile_ms(latencies, 99),
            }
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(ids["hnsw"], ids["flat"], strict=True)]
    )
    out["hnsw"]["recall_at_10"] = float(recall)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=RESULTS / "serve.json")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)

    from app.core.datasets import read_sts
    from app.encoding.bert import BertEncoder

    sentences = read_sts(DATA / "stsb-en" / "test.tsv").sentences
    encoder = BertEncoder(device="cpu", batch_size=64)
    encoder.encode(sentences[:256])  # warm-up
    start = time.perf_counter()
    encoder.encode(sentences)
    offline = len(sentences) / (time.perf_counter() - start)
    # What a server can at best reach: batches of 32 in arrival order, each padded to its own
    # longest sentence (requests cannot be length-sorted across the whole input).
    start = time.perf_counter()
    for i in range(0, len(sentences), 32):
        encoder.encode(sentences[i : i + 32])
    offline_arrival_32 = len(sentences) / (time.perf_counter() - start)
    del encoder

    docs = corpus(args.documents)
    queries = read_sts(DATA / "stsb-en" / "dev.tsv").sentences1[:300]
    with tempfile.TemporaryDirectory() as tmp:
        indexes = Path(tmp) / "indexes"
        build_collections(indexes, docs)
        port = free_port()
        began = time.perf_counter()
        server = start_server(indexes, port)
        startup_s = time.perf_counter() - began
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(load(url, sentences, 8, 2.0))  # warm-up
            rows = [asyncio.run(load(url, sentences, c, args.seconds)) for c in (1, 8, 32)]
            search = search_bench(url, queries)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)

    print(f"offline encode, batch 64, length-sorted: {offline:.0f} sentences/s")
    print(f"offline encode, batches of 32 in arrival order: {offline_arrival_32:.0f} sentences/s")
    print(f"{'clients':>7} {'sent/s':>8} {'/offline':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for r in rows:
        r["ratio_to_offline"] = r["sentences_per_s"] / offline
        print(
            f"{r['clients']:>7} {r['sentences_per_s']:>8.0f} {r['ratio_to_offline']:>8.2f} "
            f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['errors']:>6}"
        )
    print(f"search over {len(docs)} documents, top_k 10, {len(queries)} queries", end="")
    print(" (HTTP, query encoding included):")
    for spec, s in search.items():
        extra = f"  recall@10 vs flat {s['recall_at_10']:.3f}" if "recall_at_10" in s else ""
        print(f"  {spec:5s} p50 {s['p50_ms']:.1f} ms  p99 {s['p99_ms']:.1f} ms{extra}")
    print(f"server start-up with both collections to index: {startup_s:.1f} s")
    result = {
        "benchmark": "serve",
        "offline_sentences_per_s": offline,
        "offline_arrival_order_batch32_sentences_per_s": offline_arrival_32,
        "embeddings": rows,
        "search": search,
        "documents": len(docs),
        "startup_s": startup_s,
        "seconds_per_level": args.seconds,
        "cpus": os.cpu_count(),
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
